// Edits to @grafana/flamegraph's sources made at bundle time, for work the
// component does that cannot change a pixel and for a frame it waits
// before drawing; what it draws stays the same (see docs/ui.md, "The flame
// graph"). Each edit names the exact text it replaces: if an upgrade
// changes that text the build fails, rather than ship the package unedited
// or edited in the wrong place.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'src');
const CULL = join(SRC, 'cull.js');
const MEASURE = join(SRC, 'measure.js');

const RENDERING = /@grafana[\\/]flamegraph[\\/]dist[\\/]esm[\\/]FlameGraph[\\/]rendering\.mjs$/;

// The canvas walk (walkTree) computes a colour and draws a bar, its label
// and, for a collapsed group, its strip, for every node wider than half a
// pixel at the current zoom, whether or not the bar lies on the canvas.
// Zoomed into one frame of a large profile nearly every node is off it:
// zoomed into one of 127 callers of the browser test's 16,384-node profile,
// 16,000 bars had a colour computed (regular expressions, a hash, a
// tinycolor parsed, lightened and printed) and were drawn outside the
// canvas. The edits skip a bar whose whole extent, with a margin wider
// than any stroke or group strip drawn from it, is left or right of the
// canvas, and, where the walk goes from callers to callees (the main
// graph: a node's callees lie within its extent), the nodes below it.
// The walk's other state is kept: a skipped node still passes through the
// collapsed-group bookkeeping, and a group is a chain of single children,
// so no node after a skipped subtree belongs to a group begun inside it.
// The browser test's page with every drawing call passed on (cull.js's
// setCulling(false)) skips nothing here either, and the test compares its
// pixels with these.
const offCanvas = {
  file: RENDERING,
  edits: [
    {
      find: "import { getBarColorByDiff, getBarColorByValue, getBarColorByPackage } from './colors.mjs';\n",
      replace: "import { getBarColorByDiff, getBarColorByValue, getBarColorByPackage } from './colors.mjs';\n" +
        `import { cullingOn as kilnCullingOn } from ${JSON.stringify(CULL)};\n`,
    },
    {
      find: '  let collapsedItemRendered = void 0;\n',
      replace: '  let collapsedItemRendered = void 0;\n' +
        '  const kilnCanvasWidth = wrapperWidth * window.devicePixelRatio;\n' +
        '  const kilnMargin = 2 * (GROUP_STRIP_MARGIN_LEFT + GROUP_STRIP_WIDTH + GROUP_STRIP_PADDING);\n' +
        '  const kilnCull = kilnCullingOn();\n',
    },
    {
      find: '      renderFunc(item, barX, barY, width, height, label, muted);\n',
      replace: '      if (kilnCull && (barX + width + kilnMargin < 0 || barX - kilnMargin > kilnCanvasWidth)) {\n' +
        '        if (direction === "children") continue;\n' +
        '      } else {\n' +
        '        renderFunc(item, barX, barY, width, height, label, muted);\n' +
        '      }\n',
    },
  ],
};

// A new flame graph reaches its canvas through three state updates, each
// set in an effect that runs after a render: the levels (FlameGraph), the
// canvas's width (react-use's useMeasure: a ResizeObserver, which reports
// after the first layout) and its 2D context (useSetupCanvas). React
// renders an update set in a passive effect or an observer as a task of
// its own, which the browser may paint before: the graph showed with a
// blank canvas for a frame or more (tens of milliseconds on a loaded
// machine) before it was drawn. Set in layout effects instead, and the
// width measured there too (src/measure.js: the same rectangle), they are
// rendered before the first paint; nothing else changes.
const drawBeforePaint = [
  {
    file: /@grafana[\\/]flamegraph[\\/]dist[\\/]esm[\\/]FlameGraph[\\/]FlameGraph\.mjs$/,
    edits: [
      { find: "import { useState, useEffect } from 'react';\n", replace: "import { useState, useLayoutEffect as useEffect } from 'react';\n" },
    ],
  },
  {
    file: /@grafana[\\/]flamegraph[\\/]dist[\\/]esm[\\/]FlameGraph[\\/]FlameGraphCanvas\.mjs$/,
    edits: [
      { find: "import { useMeasure } from 'react-use';\n", replace: `import { useMeasure } from ${JSON.stringify(MEASURE)};\n` },
    ],
  },
  {
    file: RENDERING,
    edits: [
      {
        find: '  const [ctx, setCtx] = useState();\n  useEffect(() => {\n',
        replace: '  const [ctx, setCtx] = useState();\n  useLayoutEffect(() => {\n',
      },
      {
        find: "import { useMemo, useEffect, useCallback, useState } from 'react';\n",
        replace: "import { useMemo, useEffect, useCallback, useState, useLayoutEffect } from 'react';\n",
      },
    ],
  },
];

export const patches = [offCanvas, ...drawBeforePaint];

function applyEdits(path, text, edits) {
  for (const { find, replace } of edits) {
    const at = text.indexOf(find);
    if (at < 0 || text.indexOf(find, at + 1) >= 0) {
      throw new Error(`patches.mjs: ${path} no longer holds exactly one ${JSON.stringify(find.trim())}`);
    }
    text = text.slice(0, at) + replace + text.slice(at + find.length);
  }
  return text;
}

// The esbuild plugin that applies them.
export const patchGrafana = {
  name: 'patch-grafana',
  setup(build) {
    // one onLoad per file: esbuild runs only the first that answers
    const byFile = new Map();
    for (const { file, edits } of patches) byFile.set(String(file), { file, edits: [...(byFile.get(String(file))?.edits ?? []), ...edits] });
    for (const { file, edits } of byFile.values()) {
      build.onLoad({ filter: file }, async (args) => ({
        contents: applyEdits(args.path, await readFile(args.path, 'utf8'), edits),
        loader: 'js',
      }));
    }
  },
};
