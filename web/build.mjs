// Bundles the UI with esbuild and writes it as a C source of gzip-compressed
// byte arrays (path, content type, ETag), which CMake compiles into kiln.
//   node build.mjs <out.c> [<dist dir>]
// The shell (index.html, the app code) loads first; the flame graph and its
// Grafana dependencies are a separate chunk fetched after the first paint.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { patchGrafana } from './patches.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const outC = resolve(process.argv[2] ?? 'ui_assets.c');
const dist = resolve(process.argv[3] ?? join(dirname(outC), 'ui_dist'));

// Parts of @grafana/ui and @grafana/data that the flame graph never calls in
// Kiln, replaced so they stay out of the bundle (see docs/ui.md): the Monaco
// code editor (3.2 MB), OpenLayers (geo table cells), the Grafana Assistant
// button (only inside Grafana; never shown: Kiln's container hands the
// header no assistant context) and moment-timezone's zone database (the UI
// shows local time and UTC).
const outsideKiln = {
  name: 'outside-kiln',
  setup(build) {
    build.onResolve({ filter: /^(monaco-editor|@monaco-editor\/react|@grafana\/assistant|ol)(\/.*)?$/ },
      () => ({ path: join(here, 'src', 'unused.js') }));
    // Babel-compiled CommonJS packages imported by default from Grafana's
    // .mjs files: Node semantics would hand over the exports object, not the
    // component the bundlers Grafana builds with give.
    build.onResolve({ filter: /^react-custom-scrollbars-2$/ }, (args) =>
      args.importer.endsWith('.mjs') ? { path: args.path, namespace: 'cjs-default' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'cjs-default' }, (args) => ({
      contents: `import * as ns from ${JSON.stringify(args.path)};\n` +
        'const m = ns.default;\nexport default (m && m.__esModule && m.default) || m;\n',
      resolveDir: here,
    }));
    // The flame graph's inner parts (canvas, data container, header), for
    // Kiln's own container (src/FlameContainer.jsx): the package's
    // "exports" names only its index, which brings Grafana's container and
    // its react-table top table.
    build.onResolve({ filter: /^@grafana\/flamegraph\/dist\/esm\/.+\.mjs$/ }, (args) => ({
      path: join(here, 'node_modules', args.path),
    }));
    build.onResolve({ filter: /^moment-timezone$/ }, () => ({
      path: join(here, 'node_modules', 'moment-timezone', 'moment-timezone.js'),
    }));
  },
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const result = await esbuild.build({
  entryPoints: [join(here, 'src', 'main.jsx')],
  bundle: true,
  minify: !process.env.KILN_UI_DEV && !process.env.KILN_UI_NOMINIFY,
  splitting: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: dist,
  entryNames: 'app-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: 'asset-[hash]',
  loader: { '.svg': 'text', '.woff2': 'file', '.woff': 'file', '.ttf': 'file', '.png': 'file' },
  define: { 'process.env.NODE_ENV': process.env.KILN_UI_DEV ? '"development"' : '"production"', global: 'globalThis' },
  jsx: 'automatic',
  plugins: [outsideKiln, patchGrafana],
  metafile: true,
  legalComments: 'linked', // the bundled packages' license comments, served beside each file
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => resolve(p));
const entryJs = outputs.find((p) => /app-[^/]*\.js$/.test(p));
const entryCss = outputs.find((p) => /app-[^/]*\.css$/.test(p));
let html = readFileSync(join(here, 'src', 'index.html'), 'utf8');
html = html.replace('%APP_JS%', '/ui/' + basename(entryJs));
html = html.replace('%APP_CSS%', entryCss ? '/ui/' + basename(entryCss) : '');
writeFileSync(join(dist, 'index.html'), html);

// The icons Grafana's components name (they fetch them at run time from
// __grafana_public_path__ + build/img/icons/<set>/<name>.svg: /ui/build/...).
function grafanaIcons() {
  const src = join(here, 'node_modules', '@grafana', 'flamegraph', 'dist', 'esm');
  const icons = join(here, 'node_modules', '@grafana', 'ui', 'dist', 'public', 'img', 'icons');
  const names = new Set(['angle-down', 'angle-right', 'angle-up', 'times', 'search']);
  const walk = (d) => readdirSync(d, { withFileTypes: true }).forEach((e) => {
    const p = join(d, e.name);
    if (e.isDirectory()) return walk(p);
    if (!p.endsWith('.mjs')) return;
    // every quoted word that names an icon file (icon props are often ternaries)
    for (const m of readFileSync(p, 'utf8').matchAll(/"([a-z0-9]+(?:-[a-z0-9]+)*)"/g)) names.add(m[1]);
  });
  walk(src);
  const out = [];
  for (const set of ['unicons', 'custom', 'mono', 'solid']) {
    for (const n of names) {
      const f = join(icons, set, n + '.svg');
      if (existsSync(f)) out.push([f, `/ui/build/img/icons/${set}/${n}.svg`]);
    }
  }
  // @grafana/ui 13 ships no angle-double-up (the flame graph's "collapse
  // all" button asks for it): the down arrow turned over.
  const down = join(icons, 'unicons', 'angle-double-down.svg');
  if (names.has('angle-double-up') && !out.some(([, p]) => p.endsWith('/angle-double-up.svg'))) {
    const up = join(dist, 'angle-double-up.svg');
    writeFileSync(up, readFileSync(down, 'utf8').replace(/<svg([^>]*)>([\s\S]*)<\/svg>/,
      '<svg$1><g transform="rotate(180 12 12)">$2</g></svg>'));
    out.push([up, '/ui/build/img/icons/unicons/angle-double-up.svg']);
  }
  return out;
}

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.ttf': 'font/ttf', '.woff': 'font/woff',
  '.woff2': 'font/woff2', '.png': 'image/png', '.svg': 'image/svg+xml', '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};
const files = [join(dist, 'index.html'), ...outputs.filter((p) => !p.endsWith('.map'))]
  .map((f) => [f, f.endsWith('index.html') ? '/' : '/ui/' + basename(f)])
  .concat(grafanaIcons());
let c = '/* Generated by web/build.mjs from web/src: do not edit, do not commit. */\n';
c += '#include "ui_assets.h"\n\n';
const rows = [];
let rawTotal = 0, gzTotal = 0, firstPaint = 0;
// What the page loads before its first paint: the entry, its CSS and the
// chunks it imports statically (the flame graph's chunk is imported lazily).
const firstLoad = new Set([entryCss]);
const pending = [entryJs];
while (pending.length) {
  const f = pending.pop();
  if (firstLoad.has(f)) continue;
  firstLoad.add(f);
  const rel = Object.keys(result.metafile.outputs).find((k) => resolve(k) === f);
  for (const imp of result.metafile.outputs[rel].imports) {
    if (imp.kind === 'import-statement') pending.push(resolve(imp.path));
  }
}
files.forEach(([f, path], i) => {
  const raw = readFileSync(f);
  const gz = gzipSync(raw, { level: 9 });
  const ext = f.slice(f.lastIndexOf('.'));
  const etag = '"' + createHash('sha256').update(raw).digest('hex').slice(0, 16) + '"';
  rawTotal += raw.length;
  gzTotal += gz.length;
  if (path === '/' || firstLoad.has(f)) firstPaint += gz.length;
  c += `static const unsigned char asset${i}[${gz.length}] = {`;
  for (let j = 0; j < gz.length; j++) c += (j % 24 === 0 ? '\n' : '') + gz[j] + ',';
  c += '\n};\n';
  rows.push(`    {"${path}", "${types[ext] ?? 'application/octet-stream'}", asset${i}, ` +
    `sizeof(asset${i}), ${raw.length}, "\\"${etag.slice(1, -1)}\\""},`);
});
c += '\nconst kiln_ui_asset kiln_ui_assets[] = {\n' + rows.join('\n') + '\n};\n';
c += `const size_t kiln_ui_n_assets = ${rows.length};\n`;
writeFileSync(outC, c);
const kb = (n) => (n / 1024).toFixed(1) + ' KiB';
console.log(`kiln ui: ${files.length} files, ${kb(rawTotal)} raw, ${kb(gzTotal)} gzip; ` +
  `before the first paint (html, app, its static chunks, css) ${kb(firstPaint)} gzip`);
