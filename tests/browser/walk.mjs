// Walks Kiln's web UI in a real browser (Debian's chromium, driven by
// playwright-core; no browser download). Starts kiln on ephemeral loopback
// ports, pushes real profiles from the shared test data at the current time,
// then opens every view and compares the totals and frame names the UI shows
// with the API's own answers; clicks through zoom, search, collapse, the
// sandwich view, the tag explorer, comparison, diff, ad hoc upload, exports
// and the empty and error states; fails on any console error; saves a
// screenshot of each view; prints (never asserts) render times.
//
// Env: KILN_BIN, KILN_TESTDATA, KILN_UI_SHOTS (screenshot folder),
// CHROMIUM (default /usr/bin/chromium).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.error('FAIL: playwright-core is not installed: run `npm ci` in tests/browser (.ci/install-deps does)');
  process.exit(1);
}

const BIN = process.env.KILN_BIN;
const DATA = process.env.KILN_TESTDATA || '../shared/testdata';
const SHOTS = process.env.KILN_UI_SHOTS || join(tmpdir(), 'kiln-ui-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 30_000; // every wait is bounded

let failures = 0;
const results = [];
function check(ok, what, detail = '') {
  results.push(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ': ' + detail : ''}`);
  console.log(results[results.length - 1]);
  if (!ok) failures++;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- kiln ---------------------------------------------------------------
async function startKiln() {
  if (!BIN) throw new Error('KILN_BIN is not set');
  const [http, grpc] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
  const args = ['-target=all', '-server.http-listen-address=127.0.0.1', `-server.http-listen-port=${http}`,
    '-server.grpc-listen-address=127.0.0.1', `-server.grpc-listen-port=${grpc}`,
    '-server.otlp-grpc-listen-port=-1', `-storage.path=${dir}`, '-log.level=warn'];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${http}`;
  const until = Date.now() + STEP_MS;
  while (Date.now() < until) {
    try {
      if ((await fetch(base + '/ready')).ok) return { proc, base, dir };
    } catch { /* not listening yet */ }
    if (proc.exitCode !== null) throw new Error(`kiln exited with ${proc.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error('kiln not ready in 30 s');
}

async function push(base, file, name, fromSec, tenant, body) {
  const url = `${base}/ingest?name=${encodeURIComponent(name)}&format=folded&from=${fromSec}&until=${fromSec + 10}`;
  const res = await fetch(url, {
    method: 'POST', body: body ?? readFileSync(join(DATA, file)),
    headers: tenant ? { 'X-Scope-OrgID': tenant } : {},
  });
  if (!res.ok) throw new Error(`push ${file || name}: ${res.status} ${await res.text()}`);
}

async function api(base, method, body, tenant) {
  const res = await fetch(`${base}/querier.v1.QuerierService/${method}`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(tenant ? { 'X-Scope-OrgID': tenant } : {}) },
  });
  if (!res.ok) throw new Error(`${method}: ${res.status} ${await res.text()}`);
  return res.json();
}

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const HOUR = 3600e3;

async function apiFlame(base, selector, tenant, from = Date.now() - HOUR) {
  const r = await api(base, 'SelectMergeStacktraces',
    { profileTypeID: CPU, labelSelector: selector, start: from, end: Date.now(), maxNodes: 16384 }, tenant);
  const fg = r.flamegraph || { names: [], levels: [] };
  // self per function name (level layout: offset, total, self, name)
  const self = new Map();
  for (const lv of fg.levels) {
    const v = lv.values.map(Number);
    for (let i = 0; i + 4 <= v.length; i += 4) self.set(fg.names[v[i + 3]], (self.get(fg.names[v[i + 3]]) || 0) + v[i + 2]);
  }
  return { total: Number(fg.total || 0), names: fg.names, self };
}

// --- the synthetic profiles for the figures -------------------------------
// 127 callers x 128 callees under one frame: 16,384 nodes below the root.
// Two pushes (a profile may hold 16,000 stacks), merged by the query.
function wideFolded(half) {
  const lines = [];
  for (let i = half * 64; i < Math.min(127, half * 64 + 64); i++) for (let j = 0; j < 128; j++) lines.push(`bench;caller_${i};callee_${i}_${j} ${1 + ((i * 31 + j) % 9)}`);
  return lines.join('\n') + '\n';
}

async function pushAll(base) {
  const now = Math.floor(Date.now() / 1000);
  // real profiles (MANIFEST.md totals: 185, 285 and 199 samples at 100 Hz)
  await push(base, 'async-profiler/sample1.collapsed', 'shop.cpu{env=dev,region=eu}', now - 1800);
  await push(base, 'flamegraph/perf-vertx-stacks-01-collapsed-all.txt', 'shop.cpu{env=prod,region=us}', now - 600);
  await push(base, 'flamegraph/perf-numa-stacks-01-collapsed-tid.txt', 'billing.cpu{env=prod,region=eu}', now - 1200);
  await push(base, 'speedscope/simple.txt', 'other.cpu{env=dev}', now - 300, 'team-b');
  // the figures' data, in a tenant of their own
  await push(base, null, 'wide.cpu', now - 900, 'bench', wideFolded(0));
  await push(base, null, 'wide.cpu', now - 880, 'bench', wideFolded(1));
  const tiny = 'main;loop;work 3\nmain;idle 1\n';
  const jobs = [];
  for (let m = 0; m < 1440; m++) jobs.push(() => push(base, null, 'series.cpu', now - 86400 + m * 60 + 1, 'bench', tiny));
  for (let k = 0; k < jobs.length; k += 16) await Promise.all(jobs.slice(k, k + 16).map((f) => f()));
}

// --- the browser ------------------------------------------------------------
const consoleErrors = [];
let expectHttpErrors = false;

async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-ui-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, acceptDownloads: true,
    viewport: { width: 1280, height: 720 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(STEP_MS);
  return { ctx, profile };
}

function watch(page) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectHttpErrors && /Failed to load resource/.test(m.text())) return;
    consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
}

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function total(page, testid) {
  const el = page.locator(`[data-testid="${testid}-total"]`);
  await el.waitFor();
  return { left: Number(await el.getAttribute('data-total')), right: Number(await el.getAttribute('data-total-right') || NaN) };
}

const fitsWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

const q = (o) => '/?' + new URLSearchParams(o).toString();

// Time from a click to the paint of the frame after it: the flame graph
// redraws in a microtask after the click (React renders a click's update
// and runs its effects there), and a task queued from the next animation
// frame callback runs once that frame is painted.
async function timedClick(page, x, y) {
  return page.evaluate(([cx, cy]) => new Promise((resolve) => {
    const el = document.elementFromPoint(cx, cy);
    const t0 = performance.now();
    for (const type of ['mousedown', 'mouseup', 'click']) {
      el.dispatchEvent(new MouseEvent(type, { bubbles: true, clientX: cx, clientY: cy, button: 0 }));
    }
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => resolve(performance.now() - t0);
      ch.port2.postMessage(null);
    });
  }), [x, y]);
}

async function frameAt(page, row, xFrac) {
  const box = await page.locator('[data-testid="flameGraph"]').first().boundingBox();
  return [box.x + box.width * xFrac, box.y + 22 * row + 11];
}

// Clicks a frame of the flame graph and returns the box of its menu's
// "Focus block" item. A slow machine may still be laying the graph out
// when the first click lands (after a view switch), so it tries again a
// few times, each bounded.
async function openFrameMenu(page, row, xFrac) {
  for (let attempt = 1; ; attempt++) {
    const [x, y] = await frameAt(page, row, xFrac);
    await page.mouse.click(x, y);
    const item = page.getByText('Focus block');
    try {
      await item.waitFor({ state: 'visible', timeout: 5000 });
      return await item.boundingBox();
    } catch (e) {
      if (attempt === 4) throw e;
      await page.keyboard.press('Escape');
    }
  }
}

async function stepSingle(page, base) {
  await page.goto(base + q({ from: 'now-1h' }));
  const api0 = await apiFlame(base, '{}');
  const t = await total(page, 'flame');
  check(t.left === api0.total && api0.total === (185 + 285 + 199) * 1e7, 'single: total equals the API', `${t.left} vs ${api0.total}`);
  const top = [...api0.self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n]) => n);
  await page.waitForFunction((names) => { // the table fills in after the graph
    const t = document.querySelector('[data-testid="topTable"]')?.innerText || '';
    return names.every((n) => t.includes(n));
  }, top).catch(() => {});
  const table = await page.locator('[data-testid="topTable"]').innerText();
  check(top.every((n) => table.includes(n)), 'single: the top table lists the API\'s 5 largest self functions', top.join(', ') + ' in ' + table.slice(0, 400).replace(/\n/g, '|'));
  await shot(page, 'single');
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
  console.log(`FIGURE first contentful paint of / : ${fcp.toFixed(0)} ms`);
  check(await fitsWidth(page), 'single: no horizontal scrolling at 1280x720');

  // service picker, by keyboard
  await page.locator('#service').focus();
  await page.locator('#service').selectOption('shop');
  const shop = await apiFlame(base, '{service_name="shop"}');
  await page.waitForFunction((v) => document.querySelector('[data-testid="flame-total"]')?.dataset.total === String(v), shop.total);
  check(page.url().includes('service_name'), 'single: the service picker sets the selector and the URL');
  check(shop.total === (185 + 285) * 1e7, 'single: service total equals the API', String(shop.total));

  // label completion: names, then values, accepted with the keyboard
  const sel = page.locator('#selector');
  await sel.click();
  await sel.press('End');
  await sel.press('ArrowLeft');
  await sel.type(', en');
  await page.locator('#selector-list >> text=env').waitFor();
  await sel.press('Enter');
  await page.locator('#selector-list >> text=prod').waitFor();
  await sel.press('ArrowDown');
  const active = await page.locator('#selector-list [aria-selected="true"]').innerText();
  await sel.press('Enter');
  const typed = await sel.inputValue();
  check(typed === `{service_name="shop", env="${active}"}`, 'single: completion from LabelNames and LabelValues', typed);
  await sel.press('Enter');
  const comp = await apiFlame(base, typed);
  await page.waitForFunction((v) => document.querySelector('[data-testid="flame-total"]')?.dataset.total === String(v), comp.total);
  check(true, 'single: the completed selector\'s total equals the API', String(comp.total));

  // search in the flame graph
  const search = page.getByPlaceholder('Search...').first();
  await search.fill('read');
  await page.waitForTimeout(300); // the search is debounced
  const filtered = await page.locator('[data-testid="topTable"]').innerText();
  check(/read/.test(filtered) && !/SpinPause/.test(filtered), 'single: search filters the top table');
  await search.fill('');
  // the top table is linked to the graph: a name clicked there is searched
  await page.locator('[data-testid="topTable"]').getByText(top[0], { exact: true }).first().click();
  await page.waitForFunction((want) => document.querySelector('input[placeholder="Search..."]')?.value === want, `^${top[0]}$`);
  check(true, 'single: a top table name searches the flame graph', top[0]);
  await search.fill('');

  // zoom: click a frame, "Focus block"
  const [fx, fy] = await frameAt(page, 1, 0.02);
  await page.mouse.click(fx, fy);
  await page.getByText('Focus block').click();
  await page.getByLabel('Reset focus and sandwich state').first().waitFor();
  check(true, 'single: zoom into a frame (Focus block, then a reset button)');
  await page.getByLabel('Reset focus and sandwich state').first().click();

  // sandwich view of one function
  await page.mouse.click(fx, fy);
  await page.getByText('Sandwich view').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="flameGraph"]').length >= 2);
  check(true, 'single: sandwich view shows callers and callees');
  await shot(page, 'sandwich');
  await page.getByLabel('Reset focus and sandwich state').first().click();

  // collapse
  const collapse = page.getByLabel('Collapse all groups');
  await collapse.first().click();
  await page.getByLabel('Expand all groups').first().waitFor();
  check(true, 'single: collapse all groups');

  // top table sort
  const before = (await page.locator('[data-testid="topTable"]').innerText()).split('\n').slice(0, 12).join('|');
  await page.locator('[data-testid="topTable"]').getByText('Total', { exact: true }).click();
  const after = (await page.locator('[data-testid="topTable"]').innerText()).split('\n').slice(0, 12).join('|');
  check(before !== after, 'single: the top table sorts by another column');

  // a range dragged on the chart
  const over = await page.locator('.u-over').first().boundingBox();
  await page.mouse.move(over.x + over.width * 0.5, over.y + 20);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.95, over.y + 20, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => /from=\d{13}/.test(location.search));
  check(true, 'single: dragging on the chart selects a range (in the URL)');

  // exports: pprof (SelectMergeProfile), SVG
  await page.goto(base + q({ from: 'now-1h' }));
  await total(page, 'flame');
  const [pprof] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-pprof').click()]);
  const raw = gunzipSync(readFileSync(await pprof.path()));
  check(raw.length > 100 && raw[0] === 0x0a, 'export: pprof (gzip of a google.v1.Profile)', `${raw.length} bytes`);
  const [svg] = await Promise.all([page.waitForEvent('download'), page.getByText('Export SVG').click()]);
  const svgText = readFileSync(await svg.path(), 'utf8');
  check(svgText.startsWith('<svg') && svgText.includes(top[0].replace(/&/g, '&amp;').replace(/</g, '&lt;')), 'export: SVG names the frames');
  const [png] = await Promise.all([page.waitForEvent('download'), page.getByText('Export PNG').click()]);
  check(readFileSync(await png.path()).subarray(1, 4).toString() === 'PNG', 'export: PNG');

  // the shared URL reopens the same state
  const url = base + q({ from: 'now-1h', query: '{service_name="shop"}', theme: 'light' });
  await page.goto(url);
  const light = await total(page, 'flame');
  check(light.left === shop.total && (await page.evaluate(() => document.body.className)) === 'light',
    'share: the URL holds selector and theme');
  await shot(page, 'single-light');
  await page.setViewportSize({ width: 1920, height: 1080 });
  await shot(page, 'single-1920');
  check(await fitsWidth(page), 'single: no horizontal scrolling at 1920x1080');
  await page.setViewportSize({ width: 1280, height: 720 });
}

async function stepTags(page, base) {
  await page.goto(base + q({ view: 'tags', tag: 'env', from: 'now-1h' }));
  const r = await api(base, 'SelectSeries', { profileTypeID: CPU, labelSelector: '{}', start: Date.now() - HOUR, end: Date.now(), step: 10, groupBy: ['env'] });
  const want = {};
  for (const s of r.series) want[s.labels.find((l) => l.name === 'env').value] = s.points.reduce((a, p) => a + Number(p.value), 0);
  await page.locator('[data-testid="tag-table"] tbody tr').first().waitFor();
  const got = await page.$$eval('[data-testid="tag-table"] tbody tr', (rows) => rows.map((tr) => [tr.cells[0].innerText, Number(tr.cells[1].dataset.total)]));
  check(got.length === 2 && got.every(([v, t]) => want[v] === t), 'tags: each env value\'s total equals SelectSeries group_by', JSON.stringify(got));
  await shot(page, 'tags');
  // keyboard: the label picker, then a value opened with Enter
  await page.getByTestId('tag').focus();
  await page.keyboard.press('ArrowDown'); // env -> the next label
  await page.waitForFunction(() => !location.search.includes('tag=env'));
  check(true, 'tags: the label picker works from the keyboard', new URL(page.url()).searchParams.get('tag'));
  await page.getByTestId('tag').selectOption('env');
  await page.getByRole('button', { name: 'prod' }).focus();
  await page.keyboard.press('Enter');
  const prod = await apiFlame(base, '{env="prod"}');
  await page.waitForFunction((v) => document.querySelector('[data-testid="flame-total"]')?.dataset.total === String(v), prod.total);
  check(page.url().includes('view=single') || !page.url().includes('view='), 'tags: a value opens its flame graph', String(prod.total));
}

async function stepCompare(page, base) {
  const sel = { from: 'now-1h', query: '{service_name="shop", env="dev"}', query2: '{service_name="shop", env="prod"}' };
  const [l, r] = [await apiFlame(base, sel.query), await apiFlame(base, sel.query2)];
  await page.goto(base + q({ view: 'compare', ...sel, from2: 'now-1h' }));
  const [tl, tr] = [await total(page, 'flame-left'), await total(page, 'flame-right')];
  check(tl.left === l.total && tr.left === r.total && l.total === 185e7 && r.total === 285e7, 'compare: both sides equal the API', `${tl.left}, ${tr.left}`);
  await shot(page, 'comparison');
  check(await fitsWidth(page), 'compare: no horizontal scrolling at 1280x720');
  await page.goto(base + q({ view: 'diff', ...sel, from2: 'now-1h' }));
  const d = await total(page, 'flame-diff');
  check(d.left === l.total && d.right === r.total, 'diff: baseline and comparison totals equal the API', `${d.left} → ${d.right}`);
  const rows = await page.locator('[data-testid="diff-table"] tbody tr').count();
  check(rows > 0, 'diff: the table of largest changes has rows', String(rows));
  await shot(page, 'diff');
}

async function stepAdhoc(page, base) {
  await page.goto(base + q({ view: 'adhoc' }));
  const one = join(DATA, 'google-pprof/sample.cpu');
  const two = join(DATA, 'grafana-pyroscope/cpu.pb.gz');
  await page.getByTestId('adhoc-file').setInputFiles([one]);
  const outcome = await Promise.race([
    page.locator('[data-testid="flame-adhoc"]').waitFor().then(() => 'shown'),
    page.locator('[role="alert"]').first().waitFor().then(() => 'error'),
  ]);
  await shot(page, 'adhoc');
  if (outcome === 'shown') {
    check(true, 'adhoc: an uploaded pprof is shown as a flame graph');
    await page.getByTestId('adhoc-file').setInputFiles([one, two]);
    await page.waitForFunction(() => document.querySelector('[data-testid="flame-adhoc-total"]')?.dataset.totalRight);
    check(true, 'adhoc: two uploaded files are diffed');
    await shot(page, 'adhoc-diff');
    return;
  }
  const msg = await page.locator('[role="alert"]').first().innerText();
  check(false, 'adhoc: upload', msg);
}

async function stepEmptyAndErrors(page, base) {
  await page.goto(base + q({ tenant: 'nobody-here' }));
  await page.getByTestId('empty').waitFor();
  const text = await page.getByTestId('empty').innerText();
  check(/pyroscope\.write/.test(text) && /curl -g/.test(text) && /X-Scope-OrgID: nobody-here/.test(text), 'empty: examples for Alloy, the SDKs and curl, with the tenant');
  await shot(page, 'empty');
  // the curl example, run as shown, makes the tenant's first profile appear
  const example = await page.locator('figure', { hasText: 'curl (folded stacks)' }).locator('pre').innerText();
  execFileSync('bash', ['-c', example], { timeout: STEP_MS, stdio: 'ignore' });
  await page.reload();
  const first = await total(page, 'flame');
  check(first.left === 110 * 1e7, 'empty: the curl example pushes a profile the UI then shows', String(first.left));
  await page.goto(base + q({ tenant: 'team-b', from: 'now-1h' }));
  const b = await apiFlame(base, '{}', 'team-b');
  const tb = await total(page, 'flame');
  check(tb.left === b.total && b.total === 14e7, 'tenant: X-Scope-OrgID selects the tenant', String(tb.left));
  expectHttpErrors = true;
  await page.goto(base + q({ query: '{env=', from: 'now-1h' }));
  const err = await page.locator('[role="alert"]').first().innerText();
  check(/invalid_argument/.test(err), 'error: the server\'s message is shown', err);
  await shot(page, 'error');
  // still usable: another view, then a valid selector typed in
  await page.getByTestId('tab-tags').click();
  await page.locator('[aria-label="Tag explorer"] [role="alert"]').first().waitFor();
  await page.locator('#selector').fill('{}');
  await page.locator('#selector').press('Enter');
  await page.locator('[data-testid="tag-table"] tbody tr').first().waitFor();
  await page.waitForLoadState('networkidle');
  expectHttpErrors = false;
  check(await page.locator('[role="alert"]').count() === 0, 'error: the view stays usable and recovers');
}

// The flame graph's canvas as a PNG data URL, once a few frames have passed
// (a zoom draws during its click; this waits out anything after it).
async function canvasPixels(page) {
  await page.evaluate(() => new Promise((r) => { let n = 4; const f = () => (--n ? requestAnimationFrame(f) : r()); requestAnimationFrame(f); }));
  return page.evaluate(() => document.querySelector('[data-testid="flameGraph"]').toDataURL('image/png'));
}

// Opens the wide profile, waits for its render figure, zooms into a frame
// of its callees' row; returns the figures and the canvas before and after.
async function wideZoom(page, base) {
  await page.goto(base + q({ tenant: 'bench', query: '{service_name="wide"}', from: 'now-1h' }));
  await total(page, 'flame');
  await page.waitForFunction(() => window.__kilnTimings?.flame > 0);
  const render = await page.evaluate(() => window.__kilnTimings.flame);
  const before = await canvasPixels(page);
  const item = await openFrameMenu(page, 2, 0.3);
  const zoom = await timedClick(page, item.x + 5, item.y + item.height / 2);
  await page.getByLabel('Reset focus and sandwich state').first().waitFor();
  return { render, zoom, before, after: await canvasPixels(page) };
}

async function stepFigures(page, base) {
  const api0 = await apiFlame(base, '{service_name="wide"}', 'bench');
  const { render, zoom, before, after } = await wideZoom(page, base);
  console.log(`FIGURE flame graph, ${api0.names.length - 1} names, ${16384} nodes below the root, with the top table: render ${render.toFixed(1)} ms, zoom ${zoom.toFixed(1)} ms`);
  // The same in a page whose flame graph passes every drawing call on to
  // the canvas (web/src/cull.js off): the same pixels, before and after the
  // zoom, and the zoom's time without it for reference.
  const plain = await page.context().newPage();
  watch(plain);
  try {
    await plain.addInitScript(() => { window.__kilnNoCull = true; });
    await plain.bringToFront();
    const p = await wideZoom(plain, base);
    check(p.before === before, 'figures: the flame graph\'s pixels are the same with every drawing call passed on');
    check(p.after === after, 'figures: the zoomed flame graph\'s pixels are the same with every drawing call passed on');
    console.log(`FIGURE the same, every drawing call passed on: render ${p.render.toFixed(1)} ms, zoom ${p.zoom.toFixed(1)} ms`);
  } finally {
    await plain.close();
    await page.bringToFront();
  }
  // the same with the flame graph alone (the view's "Flame Graph" switch)
  await page.getByLabel('Reset focus and sandwich state').first().click();
  await page.getByRole('radio', { name: 'Flame Graph' }).check({ force: true });
  await page.locator('[data-testid="topTable"]').waitFor({ state: 'detached' });
  const item2 = await openFrameMenu(page, 2, 0.3);
  const zoom2 = await timedClick(page, item2.x + 5, item2.y + item2.height / 2);
  const reset = await page.getByLabel('Reset focus and sandwich state').first().boundingBox();
  const unzoom = await timedClick(page, reset.x + reset.width / 2, reset.y + reset.height / 2);
  console.log(`FIGURE flame graph alone: zoom ${zoom2.toFixed(1)} ms, back out ${unzoom.toFixed(1)} ms`);
  await page.goto(base + q({ tenant: 'bench', query: '{service_name="series"}', from: 'now-24h' }));
  await page.waitForFunction(() => window.__kilnTimings?.series > 0 && window.__kilnTimings['series-points'] > 0);
  const s = await page.evaluate(() => [window.__kilnTimings.series, window.__kilnTimings['series-points']]);
  console.log(`FIGURE time series, 24 h: ${s[1]} points rendered in ${s[0].toFixed(1)} ms`);
  check(s[1] >= 1400, 'figures: the 24 h series has about 1,440 points', String(s[1]));
  await shot(page, 'series-24h');
}

const { proc, base, dir } = await startKiln();
let browser;
try {
  const t0 = Date.now();
  await pushAll(base);
  console.log(`pushed the profiles in ${Date.now() - t0} ms`);
  browser = await openBrowser();
  const page = await browser.ctx.newPage();
  watch(page);
  for (const [name, step] of [['single', stepSingle], ['tags', stepTags], ['compare and diff', stepCompare],
    ['adhoc', stepAdhoc], ['empty and errors', stepEmptyAndErrors], ['figures', stepFigures]]) {
    try {
      await step(page, base);
    } catch (e) {
      check(false, `${name}: step stopped`, e.message.split('\n')[0]);
      await shot(page, `failed-${name.replace(/ /g, '-')}`).catch(() => {});
    }
  }
  check(consoleErrors.length === 0, 'no console errors', consoleErrors.slice(0, 5).join(' | '));
} finally {
  await browser?.ctx.close().catch(() => {});
  if (browser) rmSync(browser.profile, { recursive: true, force: true });
  proc.kill('SIGTERM');
  const code = proc.exitCode ?? proc.signalCode ?? await new Promise((r) => {
    const t = setTimeout(() => { proc.kill('SIGKILL'); r('killed after 10 s'); }, 10_000);
    proc.once('exit', (c, sig) => { clearTimeout(t); r(c ?? sig); });
  });
  // a clean stop; under the sanitizers a report (a leak, say) makes it non-zero
  check(code === 0, 'kiln stops cleanly on SIGTERM', String(code));
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nscreenshots: ${SHOTS}`);
console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
