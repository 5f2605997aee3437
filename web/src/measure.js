// react-use's useMeasure (the size of an element's content box, kept up
// to date by a ResizeObserver), for @grafana/flamegraph's canvas
// (patches.mjs): measured once before the first paint too. A
// ResizeObserver reports after the first layout, and React renders the
// update it sets after that frame is painted: the flame graph's canvas,
// drawn once its width is known, was a frame late, blank in the first
// frame that showed the graph. The same rectangle, and no update when the
// observer reports the size already measured.
import { useLayoutEffect, useState } from 'react';

const NONE = { x: 0, y: 0, width: 0, height: 0, top: 0, left: 0, bottom: 0, right: 0 };

// The content box as a ResizeObserver's contentRect gives it.
function contentRect(el) {
  const cs = getComputedStyle(el);
  const px = (v) => parseFloat(v) || 0;
  const box = el.getBoundingClientRect();
  const left = px(cs.paddingLeft), top = px(cs.paddingTop);
  const width = Math.max(0, box.width - left - px(cs.paddingRight) - px(cs.borderLeftWidth) - px(cs.borderRightWidth));
  const height = Math.max(0, box.height - top - px(cs.paddingBottom) - px(cs.borderTopWidth) - px(cs.borderBottomWidth));
  return { x: left, y: top, width, height, top, left, bottom: top + height, right: left + width };
}

function sameRect(a, b) {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

export function useMeasure() {
  const [element, ref] = useState(null);
  const [rect, setRect] = useState(NONE);
  useLayoutEffect(() => {
    if (!element) return undefined;
    const set = (r) => setRect((old) => (sameRect(old, r) ? old : r));
    set(contentRect(element));
    const observer = new ResizeObserver((entries) => {
      if (!entries[0]) return;
      const { x, y, width, height, top, left, bottom, right } = entries[0].contentRect;
      set({ x, y, width, height, top, left, bottom, right });
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [element]);
  return [ref, rect];
}
