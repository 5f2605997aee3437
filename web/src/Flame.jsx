// The flame graph (Grafana's own canvas and header from @grafana/flamegraph:
// search, zoom, collapse, sandwich; Kiln's container and top table, see
// FlameContainer.jsx) with PNG and SVG export. Loaded as a separate chunk
// after the first paint.
import { memo, useEffect, useRef } from 'react';
import { createTheme, ThemeContext } from '@grafana/data';
import FlameContainer, { warmUp } from './FlameContainer.jsx';
import { drawsOf, installCulling, setCulling } from './cull.js';
import { labelsOf } from './flamedata.js';
import { whenThisFramePainted } from './timing.js';

installCulling();
if (window.__kilnNoCull) setCulling(false); // the browser test's comparison

const themes = {};
function themeOf(mode) {
  return (themes[mode] ??= createTheme({ colors: { mode } }));
}
// this chunk is requested after the first paint, while the first queries
// run: the flame graph's first render prepared in the meantime
warmUp(themeOf(document.body.className === 'light' ? 'light' : 'dark'), true);

function download(name, blob) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

// The whole flame graph as SVG, drawn from the data (not the canvas), so it
// stays sharp and searchable at any size.
function toSvg(df, width = 1600) {
  const f = Object.fromEntries(df.fields.map((x) => [x.name, x.values]));
  f.label = labelsOf(df);
  const total = (f.value[0] || 0) + (f.valueRight ? f.valueRight[0] : 0) || 1;
  const h = 18, starts = [], out = [];
  let maxLevel = 0;
  for (let i = 0; i < f.label.length; i++) {
    const l = f.level[i];
    const w = f.value[i] + (f.valueRight ? f.valueRight[i] : 0);
    const x = l === 0 ? 0 : starts[l - 1].next;
    if (l > 0) starts[l - 1].next += w;
    starts[l] = { next: x };
    maxLevel = Math.max(maxLevel, l);
    const px = (x / total) * width, pw = (w / total) * width;
    if (pw < 0.5) continue;
    const hue = 20 + ((f.label[i].length * 37) % 40);
    out.push(`<g><title>${esc(f.label[i])} (${w})</title><rect x="${px.toFixed(2)}" y="${l * h}" width="${pw.toFixed(2)}" height="${h - 1}" fill="hsl(${hue},75%,60%)"/>` +
      (pw > 40 ? `<text x="${(px + 3).toFixed(2)}" y="${l * h + 13}" font-size="11" font-family="monospace">${esc(f.label[i].slice(0, Math.floor(pw / 7)))}</text>` : '') + '</g>');
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${(maxLevel + 1) * h}">${out.join('')}</svg>`;
}

// Calls done(end) once the flame graph shows data: each canvas drawn at its
// size and the top table's rows in place (when it is shown), end being when
// the frame that showed the last of those changes was painted, once 5
// frames have passed without another. Gives up after 10 s; returns a
// function that stops it.
function whenPainted(box, since, done) {
  let seen = '', end = 0, quiet = 0, stop = false;
  const until = performance.now() + 10_000;
  const frame = () => {
    if (stop || performance.now() > until) return;
    const canvases = [...box.querySelectorAll('canvas')];
    const drawn = canvases.map((c) => drawsOf(c)).filter((d) => d.last > since);
    const table = box.querySelector('[data-testid="topTable"]');
    const ready = canvases.length > 0 && drawn.length === canvases.length &&
      (!table || table.querySelector('[role="cell"]') !== null);
    const state = ready ? drawn.map((d) => d.draws).join() + '/' + (table ? table.querySelectorAll('[role="cell"]').length : '') : '';
    if (state !== seen) {
      // this frame shows the change: its paint is the candidate end
      seen = state;
      end = 0;
      quiet = 0;
      const mine = state;
      if (ready) whenThisFramePainted((t) => { if (seen === mine) end = t; });
    } else if (end && ++quiet >= 5) {
      done(end);
      return;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  return () => { stop = true; };
}

// Memoized: the view around it re-renders when its other queries answer,
// and the component below would render again each time.
export default memo(function Flame({ data, arrived, mode, name, onRendered }) {
  const theme = themeOf(mode);
  const box = useRef(null);
  const t0 = useRef(0);
  t0.current = performance.now();
  useEffect(() => {
    // from the data's arrival (or, without it, this render) to the
    // painted canvas: what a user waits for once the answer is in
    const start = arrived ?? t0.current;
    return whenPainted(box.current, start, (end) => {
      performance.measure(`kiln flame ${name}`, { start, end });
      onRendered?.(end - start);
      warmUp(theme);
    });
  }, [data, arrived, name, onRendered, theme]);
  const png = () => {
    const c = box.current?.querySelector('canvas');
    c?.toBlob((b) => download(`${name}.png`, b), 'image/png');
  };
  const svg = () => download(`${name}.svg`, new Blob([toSvg(data)], { type: 'image/svg+xml' }));
  return (
    <ThemeContext.Provider value={theme}>
      <div className="flame" ref={box} data-kiln-cull="">
        <div className="export">
          <button type="button" onClick={png}>Export PNG</button>
          <button type="button" onClick={svg}>Export SVG</button>
        </div>
        <FlameContainer data={data} theme={theme} />
      </div>
    </ThemeContext.Provider>
  );
});
