// A time-series chart (uPlot, the chart Grafana draws with); dragging across
// it selects a time range.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import { afterPaint } from './timing.js';
import 'uplot/dist/uPlot.min.css';

const COLORS = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0'];

// SelectSeries' series as uPlot's columns: shared x (seconds), one y each.
export function seriesColumns(series) {
  const xs = new Set();
  for (const s of series) for (const p of s.points || []) xs.add(Number(p.timestamp));
  const x = [...xs].sort((a, b) => a - b);
  const at = new Map(x.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y = new Array(x.length).fill(null);
    for (const p of s.points || []) y[at.get(Number(p.timestamp))] = Number(p.value);
    return y;
  });
  return [x.map((t) => t / 1000), ...ys];
}

export function seriesName(s) {
  const l = (s.labels || []).filter((x) => x.name !== '__name__' && !x.name.startsWith('__profile'));
  return l.length ? l.map((x) => `${x.name}=${x.value}`).join(', ') : 'total';
}

export default function Series({ series, arrived, unit, format = String, fromMs, untilMs, onSelect, onRendered, height = 160 }) {
  const box = useRef(null);
  const select = useRef(onSelect); // the latest handler, without redrawing for a new one
  select.current = onSelect;
  const drawn = useRef(null); // the series last drawn
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    // from the data's arrival (or, drawn again, from now) to the painted
    // chart (uPlot draws in a microtask: the next frame paints it)
    const t0 = drawn.current !== series && arrived !== undefined ? arrived : performance.now();
    drawn.current = series;
    const dark = !document.body.classList.contains('light');
    const axis = { stroke: dark ? '#ccccdc' : '#24292e', grid: { stroke: dark ? '#2c3235' : '#e4e7e7' } };
    const opts = {
      width: Math.max(300, el.clientWidth),
      height,
      scales: { x: { time: true, min: fromMs / 1000, max: untilMs / 1000 }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [axis, { ...axis, size: 80, values: (u, vals) => vals.map((v) => format(v, unit)) }],
      legend: { show: series.length > 1 && series.length <= 8 },
      cursor: { drag: { x: true, y: false } },
      series: [{}, ...series.map((s, i) => ({
        label: seriesName(s), stroke: COLORS[i % COLORS.length], width: 1.5,
        fill: series.length === 1 ? COLORS[0] + '33' : undefined, spanGaps: false,
      }))],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const a = u.posToVal(u.select.left, 'x'), b = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ width: 0, height: 0 }, false);
          select.current?.(Math.round(a * 1000), Math.round(b * 1000));
        }],
      },
    };
    const plot = new uPlot(opts, seriesColumns(series), el);
    const points = seriesColumns(series)[0].length;
    afterPaint((end) => onRendered?.(end - t0, points));
    const resize = () => plot.setSize({ width: Math.max(300, el.clientWidth), height });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [series, arrived, fromMs, untilMs, height, unit, format, onRendered]);
  return <div className="series" ref={box} data-testid="series" aria-label="time series; drag to select a range" />;
}
