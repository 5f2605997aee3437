// Profiles the flame graph of 16,384 nodes (the browser test's figure) in
// Debian's chromium: a CPU profile (Chrome DevTools protocol, Profiler) of
// its first render and of a zoom, summed by function (self time), plus
// performance.measure entries the page records. Not a test: run by hand.
//   KILN_BIN=build/kiln node tests/browser/profile.mjs [out dir]
// Build the UI unminified for readable names: KILN_UI_NOMINIFY=1 ninja.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.KILN_BIN;
const OUT = process.argv[2] || join(tmpdir(), 'kiln-ui-profile');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(OUT, { recursive: true });

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

function wideFolded(half) {
  const lines = [];
  for (let i = half * 64; i < Math.min(127, half * 64 + 64); i++) for (let j = 0; j < 128; j++) lines.push(`bench;caller_${i};callee_${i}_${j} ${1 + ((i * 31 + j) % 9)}`);
  return lines.join('\n') + '\n';
}

// Self time per function (ms), largest first, from a V8 CPU profile.
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]);
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() + ':' + (f.lineNumber + 1) : ''}`;
    self.set(key, (self.get(key) || 0) + (dt[i + 1] ?? 0) / 1000);
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]);
}

// Total (inclusive) time per function name, from a V8 CPU profile.
function totalTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const total = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const seen = new Set();
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id).callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() + ':' + (f.lineNumber + 1) : ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) || 0) + (dt[i + 1] ?? 0) / 1000);
    }
  }
  return [...total.entries()].sort((a, b) => b[1] - a[1]);
}

// Time per part of the work: each sample goes to the part of the deepest
// function on its stack that names one (the UI built unminified), else to
// V8's own entries, else to the rest of the JavaScript (React, emotion...).
// Inlined functions leave the stack, hence several names per part.
const PARTS = [
  ['Kiln: data frame from the answer', ['flamegraphFrame', 'preorderColumns', 'columnsFrame']],
  ['Kiln: context wrapper (cull.js)', ['passOn', 'draw', 'realize', 'flush', 'outside', 'clipped', 'pathOp']],
  ['Grafana: canvas drawing (walkTree, bar colours, labels)', ['walkTree', 'renderFunc', 'renderLabel', 'getColor', 'getBarColorByPackage', 'getBarColorByDiff', 'getBarColorByValue']],
  ['Kiln: top table (FlameContainer.jsx)', ['functionRows', 'TopTable', 'sortRows', 'DiffCell']],
  ['Kiln: search', ['searchLabels']],
  ['Grafana: top table', ['buildFilteredTable', 'buildTableDataFrame', 'e.useTable', 'useTable', 'RowsList', 'TableCell', 'getColumns', 'sortNumber']],
  ['Grafana: data container, levels, collapse', ['FlameGraphDataContainer', 'nestedSetToLevels', 'initLevels', 'getCollapsedMap', 'addTree']],
  ['Grafana: search', ['labelSearch']],
];
function parts(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const out = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    let part = null;
    const leaf = byId.get(profile.samples[i]).callFrame.functionName;
    for (let id = profile.samples[i]; id !== undefined && !part; id = parent.get(id)) {
      const f = byId.get(id).callFrame.functionName;
      part = PARTS.find(([, names]) => names.includes(f))?.[0];
    }
    if (!part) part = ['(garbage collector)', '(program)', '(idle)'].includes(leaf) ? `V8: ${leaf}` : 'other JavaScript (React, emotion, ...)';
    out.set(part, (out.get(part) || 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  }
  return [...out.entries()].sort((a, b) => b[1] - a[1]);
}

function report(name, profile) {
  writeFileSync(join(OUT, `${name}.cpuprofile`), JSON.stringify(profile));
  const ms = (profile.endTime - profile.startTime) / 1000;
  console.log(`\n== ${name}: by part (ms):`);
  for (const [k, v] of parts(profile)) console.log(`  ${v.toFixed(1).padStart(7)}  ${k}`);
  console.log(`\n== ${name}: ${ms.toFixed(0)} ms profiled; self time:`);
  for (const [k, v] of selfTimes(profile).slice(0, 25)) console.log(`  ${v.toFixed(1).padStart(7)}  ${k}`);
  console.log(`-- ${name}: total time:`);
  for (const [k, v] of totalTimes(profile).slice(0, 40)) console.log(`  ${v.toFixed(1).padStart(7)}  ${k}`);
}

// How many times the named functions ran (precise coverage call counts).
const WATCH = ['e.useTable', 'useTable', 'AutoSizer', '_onResize', 'buildTableDataFrame', 'buildFilteredTable', 'nestedSetToLevels', 'FlameGraphDataContainer', 'walkTree',
  'LegacyContainer', 'FlameContainer', 'TopTable', 'functionRows', 'FlameGraphCanvas', 'FlameGraph', 'flamegraphFrame', 'render', 'getCollapsedMap', 'initLevels', 'Flame'];
function calls(result) {
  const out = {};
  for (const s of result) for (const f of s.functions) {
    if (WATCH.includes(f.functionName) && f.ranges[0].count > 0) out[f.functionName] = (out[f.functionName] || 0) + f.ranges[0].count;
  }
  console.log('calls (since coverage started):', JSON.stringify(out));
}

const [http, grpc] = [await freePort(), await freePort()];
const dir = mkdtempSync(join(tmpdir(), 'kiln-ui-prof-'));
const proc = spawn(BIN, ['-target=all', '-server.http-listen-address=127.0.0.1', `-server.http-listen-port=${http}`,
  '-server.grpc-listen-address=127.0.0.1', `-server.grpc-listen-port=${grpc}`, '-server.otlp-grpc-listen-port=-1',
  `-storage.path=${dir}`, '-log.level=warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
const base = `http://127.0.0.1:${http}`;
const profileDir = mkdtempSync(join(tmpdir(), 'kiln-ui-chromium-'));
let ctx;
try {
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(base + '/ready')).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const now = Math.floor(Date.now() / 1000);
  for (const half of [0, 1]) {
    const res = await fetch(`${base}/ingest?name=wide.cpu&format=folded&from=${now - 900 + half * 20}&until=${now - 890 + half * 20}`,
      { method: 'POST', body: wideFolded(half), headers: { 'X-Scope-OrgID': 'bench' } });
    if (!res.ok) throw new Error(await res.text());
  }
  ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 720 },
    // KILN_SCROLLBARS=1: scrollbars that take room, as on most desktops
    ...(process.env.KILN_SCROLLBARS ? { ignoreDefaultArgs: ['--hide-scrollbars'] } : {}),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await ctx.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  const url = base + '/?' + new URLSearchParams({ tenant: 'bench', query: '{service_name="wide"}', from: 'now-1h' });
  // warm the cache (the chunks), then profile a load
  await page.goto(url);
  await page.waitForFunction(() => window.__kilnTimings?.flame > 0);
  await cdp.send('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  await cdp.send('Profiler.start');
  await page.goto(url);
  await page.waitForFunction(() => window.__kilnTimings?.flame > 0);
  report('load', (await cdp.send('Profiler.stop')).profile);
  calls((await cdp.send('Profiler.takePreciseCoverage')).result);
  await cdp.send('Profiler.stopPreciseCoverage');
  console.log('load figure:', await page.evaluate(() => window.__kilnTimings.flame));
  // when the answer arrived and when the flame graph's chunk had loaded
  console.log('load timeline (ms since navigation):', JSON.stringify(await page.evaluate(() => {
    const m = performance.getEntriesByType('measure').find((e) => e.name.startsWith('kiln flame'));
    const chunks = performance.getEntriesByType('resource').filter((r) => /chunk-.*\.js$/.test(r.name))
      .map((r) => [r.name.split('/').pop(), +r.startTime.toFixed(0), +r.responseEnd.toFixed(0), r.transferSize]);
    return { arrived: +m.startTime.toFixed(0), painted: +(m.startTime + m.duration).toFixed(0), chunks };
  })));
  // the same data again without a page load: the app follows the URL
  // (history state), so another range asks again and draws the answer
  await page.evaluate(() => { window.__kilnTimings.flame = 0; });
  await cdp.send('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  await cdp.send('Profiler.start');
  await page.evaluate(() => {
    const u = new URL(window.location.href);
    u.searchParams.set('from', 'now-2h');
    window.history.pushState(null, '', u);
    window.dispatchEvent(new PopStateEvent('popstate'));
  });
  await page.waitForFunction(() => window.__kilnTimings?.flame > 0);
  report('render', (await cdp.send('Profiler.stop')).profile);
  calls((await cdp.send('Profiler.takePreciseCoverage')).result);
  await cdp.send('Profiler.stopPreciseCoverage');
  console.log('render figure:', await page.evaluate(() => window.__kilnTimings.flame));
  console.log('measures:', JSON.stringify(await page.evaluate(() => performance.getEntriesByType('measure').map((m) => [m.name, +m.duration.toFixed(1)]))));
  for (const alone of [false, true]) {
    if (alone) {
      await page.getByRole('radio', { name: 'Flame Graph' }).check({ force: true });
      await page.locator('[data-testid="topTable"]').waitFor({ state: 'detached' });
    }
    let item;
    for (let attempt = 0; !item && attempt < 4; attempt++) { // a first click may land before the layout
      const box = await page.locator('[data-testid="flameGraph"]').first().boundingBox();
      await page.mouse.click(box.x + box.width * 0.3, box.y + 22 * 2 + 11);
      item = await page.getByText('Focus block').boundingBox({ timeout: 5000 }).catch(() => null);
      if (!item) await page.keyboard.press('Escape');
    }
    await cdp.send('Profiler.start');
    const zoom = await page.evaluate(([cx, cy]) => new Promise((resolve) => {
      const el = document.elementFromPoint(cx, cy);
      const t0 = performance.now();
      for (const type of ['mousedown', 'mouseup', 'click']) el.dispatchEvent(new MouseEvent(type, { bubbles: true, clientX: cx, clientY: cy, button: 0 }));
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
    }), [item.x + 5, item.y + item.height / 2]);
    report(alone ? 'zoom-alone' : 'zoom', (await cdp.send('Profiler.stop')).profile);
    console.log(`zoom${alone ? ' alone' : ''} figure: ${zoom.toFixed(1)} ms`);
    await page.getByLabel('Reset focus and sandwich state').first().click();
  }
} finally {
  await ctx?.close().catch(() => {});
  rmSync(profileDir, { recursive: true, force: true });
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
