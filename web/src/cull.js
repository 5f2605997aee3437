// Skips the flame graph's drawing calls that cannot change a pixel.
//
// @grafana/flamegraph walks every frame wider than half a pixel at the
// current zoom and draws it (a path, a stroke, a fill and, under a clip to
// the bar, measureText and fillText) whether or not it lies inside the
// canvas. Zoomed into one frame of a 16,384-node profile nearly all of them
// lie outside, and drawing them was most of the zoom's time (docs/ui.md).
// The walk itself now skips bars left or right of the canvas (patches.mjs);
// this wraps the 2D context of the flame graph's canvases for the rest
// (bars above or below it, what is drawn under a clip):
//
// - a fill or stroke of a path of rectangles that lies entirely outside the
//   canvas is not passed on, nor is anything drawn under a clip to such a
//   path (an empty clip, until the restore() that ends it);
// - save() and the context's properties (fillStyle, textAlign, ...) are
//   passed on only when something drawn needs them, so an empty clip costs
//   no work in the browser, and a colour set for a bar that is not drawn is
//   never parsed.
//
// What is drawn is drawn with the same state, so the pixels are the same
// (the browser test compares them with this on and off). It stays exact by
// staying out of what it does not follow: once a context is transformed,
// or has a shadow, a filter or a composite operation other than
// source-over, everything is passed on. Any other method called under an
// empty clip first sets up the deferred saves and a real empty clip. One
// difference it does not follow: a property set to a value the canvas
// rejects (an unparsable colour) while a valid one is still pending keeps
// the canvas's older value, not the pending one (the flame graph sets
// only valid values).

const wrapped = new WeakMap(); // context -> { draws, last }
let enabled = true;
const EMPTY = typeof Path2D === 'function' ? new Path2D() : null;

// For the browser test: the same page with every call passed on (and, in
// the flame graph's walk, every bar drawn: web/patches.mjs).
export function setCulling(on) {
  enabled = on;
}

export function cullingOn() {
  return enabled;
}

// How many times the canvas has been cleared at a size above zero (the
// flame graph clears it before each drawing), and when last.
export function drawsOf(canvas) {
  const ctx = canvas.getContext('2d');
  return (ctx && wrapped.get(ctx)) || { draws: 0, last: 0 };
}

const PATH = ['beginPath', 'closePath', 'moveTo', 'lineTo', 'arc', 'arcTo', 'ellipse', 'bezierCurveTo', 'quadraticCurveTo', 'roundRect', 'rect'];
const DRAW = ['fill', 'stroke', 'fillText', 'strokeText', 'fillRect', 'strokeRect', 'clearRect', 'drawImage', 'drawFocusIfNeeded'];
const TRANSFORM = ['translate', 'scale', 'rotate', 'transform', 'setTransform', 'resetTransform'];

function wrap(ctx, seen) {
  const proto = Object.getPrototypeOf(ctx);
  const canvas = ctx.canvas;
  const descs = Object.entries(Object.getOwnPropertyDescriptors(proto));
  const native = Object.fromEntries(descs.filter(([k, d]) => typeof d.value === 'function' && k !== 'constructor').map(([k, d]) => [k, d.value]));
  const props = descs.filter(([, d]) => d.set); // the drawing state's properties
  const setter = Object.fromEntries(props.map(([k, d]) => [k, d.set]));

  let exact = true; // false once the context does what this does not follow
  let box = null; // the current path's extent; null: more than rectangles
  let pending = null; // properties set and not passed on yet: { name: value }
  const frames = []; // per save(): { real: passed on, pending: as at the save, empty: holds an empty clip }
  let empty = -1; // the index of the frame holding an empty clip, or -1
  const advance = new Map(); // font -> width of 'M', for measureText under an empty clip
  let known = {}; // properties as last read from the context, while they stay so

  const flush = (p) => {
    for (const k in p) {
      setter[k].call(ctx, p[k]);
      delete known[k];
    }
  };
  // Passes the deferred saves on, each after the state it saved (and with
  // the empty clip where there is one), then the pending properties.
  const realize = () => {
    for (const f of frames) {
      if (f.real) continue;
      flush(f.pending);
      native.save.call(ctx);
      f.real = true;
      if (f.empty && EMPTY) native.clip.call(ctx, EMPTY);
    }
    if (pending) flush(pending);
    pending = null;
  };
  const culling = () => enabled && exact;
  const clipped = () => empty >= 0 && culling();
  const outside = (margin) => {
    const b = box;
    if (!b || !culling()) return false;
    return b.x1 + margin <= 0 || b.x0 - margin >= canvas.width || b.y1 + margin <= 0 || b.y0 - margin >= canvas.height;
  };

  // Anything not handled below: the deferred state passed on first.
  for (const [k, f] of Object.entries(native)) {
    ctx[k] = function passOn(...a) {
      realize();
      if (TRANSFORM.includes(k)) exact = false;
      return f.apply(ctx, a);
    };
  }
  for (const [k, d] of props) {
    const breaks = k === 'globalCompositeOperation' ? (v) => v !== 'source-over' : k === 'filter' ? (v) => v !== 'none'
      : k === 'shadowBlur' || k === 'shadowOffsetX' || k === 'shadowOffsetY' ? (v) => Number(v) !== 0 : null;
    Object.defineProperty(ctx, k, {
      configurable: true,
      enumerable: true,
      get() {
        if (pending && k in pending) realize();
        if (k in known) return known[k];
        return (known[k] = d.get.call(ctx));
      },
      set(v) {
        if (breaks && breaks(v)) exact = false;
        if (!enabled) {
          realize();
          d.set.call(ctx, v);
          delete known[k];
        } else {
          (pending ??= {})[k] = v;
        }
      },
    });
  }
  ctx.beginPath = function beginPath() {
    if (box) {
      box.x0 = box.y0 = Infinity;
      box.x1 = box.y1 = -Infinity;
    } else {
      box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    }
    native.beginPath.call(ctx);
  };
  ctx.rect = function rect(x, y, w, h) {
    const b = box;
    if (b) {
      const x2 = x + w, y2 = y + h;
      if (x < b.x0) b.x0 = x;
      if (x2 < b.x0) b.x0 = x2;
      if (x > b.x1) b.x1 = x;
      if (x2 > b.x1) b.x1 = x2;
      if (y < b.y0) b.y0 = y;
      if (y2 < b.y0) b.y0 = y2;
      if (y > b.y1) b.y1 = y;
      if (y2 > b.y1) b.y1 = y2;
      if (!(x2 === x2 && y2 === y2)) box = null; // NaN: not followed
    }
    native.rect.call(ctx, x, y, w, h);
  };
  ctx.closePath = function closePath() {
    native.closePath.call(ctx);
  };
  for (const k of PATH) {
    const f = native[k];
    if (!f || k === 'beginPath' || k === 'rect' || k === 'closePath') continue;
    ctx[k] = function pathOp(...a) {
      box = null;
      return f.apply(ctx, a);
    };
  }
  // Resizing the canvas, like reset(), puts the context back to its
  // defaults: what was pending or saved is gone.
  const forget = () => {
    known = {};
    frames.length = 0;
    empty = -1;
    pending = null;
    box = null;
  };
  ctx.reset = function reset() {
    forget();
    return native.reset?.call(ctx);
  };
  for (const k of ['width', 'height']) {
    const d = Object.getOwnPropertyDescriptor(HTMLCanvasElement.prototype, k);
    Object.defineProperty(canvas, k, {
      configurable: true,
      enumerable: true,
      get() { return d.get.call(canvas); },
      set(v) { forget(); d.set.call(canvas, v); },
    });
  }
  ctx.save = function save() {
    if (culling()) {
      frames.push({ real: false, pending: pending && { ...pending }, empty: false });
    } else {
      realize();
      native.save.call(ctx);
      frames.push({ real: true, pending: null, empty: false });
    }
  };
  ctx.restore = function restore() {
    const f = frames.pop();
    if (!f) {
      native.restore.call(ctx); // nothing saved: nothing to do
      return;
    }
    if (frames.length <= empty) empty = -1;
    if (f.real) {
      native.restore.call(ctx); // back to the state passed on with that save
      pending = null;
      known = {};
    } else {
      pending = f.pending; // nothing was passed on since that save
    }
  };
  ctx.clip = function clip(...a) {
    if (clipped()) return; // already empty
    // only inside a save(), so that a restore() ends it
    if (frames.length > 0 && a.length === 0 && outside(0)) {
      empty = frames.length - 1;
      const f = frames[empty];
      f.empty = true;
      if (f.real && EMPTY) native.clip.call(ctx, EMPTY);
      return;
    }
    realize();
    native.clip.apply(ctx, a);
  };
  for (const k of DRAW) {
    const f = native[k];
    if (!f) continue;
    ctx[k] = function draw(...a) {
      if (clipped()) return;
      if (a.length === 0 && ((k === 'fill' && outside(0)) || (k === 'stroke' && outside(ctx.lineWidth)))) return;
      if (k === 'clearRect' && canvas.width > 0 && canvas.height > 0) {
        seen.draws++;
        seen.last = performance.now();
      }
      realize();
      return f.apply(ctx, a);
    };
  }
  // Under an empty clip the text is never drawn, and the flame graph reads
  // the width only to align that text: an estimate spares the browser the
  // text shaping (exact for its monospace font and ASCII names).
  ctx.measureText = function measureText(text) {
    if (clipped()) {
      const font = (pending && pending.font) || ctx.font;
      let m = advance.get(font);
      if (m === undefined) {
        realize();
        advance.set(font, (m = native.measureText.call(ctx, 'M').width));
      }
      return { width: String(text).length * m };
    }
    realize();
    return native.measureText.call(ctx, text);
  };
  return ctx;
}

// Wraps the 2D context of every canvas inside an element marked
// data-kiln-cull (the flame graph's box): the component asks for the
// context itself, so the canvas's getContext is where to step in.
export function installCulling() {
  const proto = HTMLCanvasElement.prototype;
  if (proto.getContext.kilnCull) return;
  const real = proto.getContext;
  const getContext = function getContext(type, ...rest) {
    const ctx = real.call(this, type, ...rest);
    if (type === '2d' && ctx && !wrapped.has(ctx) && this.closest?.('[data-kiln-cull]')) {
      const seen = { draws: 0, last: 0 };
      wrapped.set(ctx, seen);
      wrap(ctx, seen);
    }
    return ctx;
  };
  getContext.kilnCull = true;
  proto.getContext = getContext;
}
