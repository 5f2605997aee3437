// Kiln's container around Grafana's flame graph: the header (search, view
// switch, collapse, colours), the canvas and a top table of Kiln's own.
// Grafana's container builds its top table with @grafana/ui's Table
// (react-table over every function, each row's cells rendered) on every new
// answer; this one sums the functions once per data frame in one pass over
// its columns and renders only the rows in sight. Search, sandwich, focus
// and the view are state here, as they are in Grafana's container.
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { flushSync } from 'react-dom';
import { createRoot } from 'react-dom/client';
import uFuzzy from '@leeoniya/ufuzzy';
import { escapeStringForRegex, formattedValueToString, ThemeContext } from '@grafana/data';
import FlameGraph from '@grafana/flamegraph/dist/esm/FlameGraph/FlameGraph.mjs';
import FlameGraphMetadata from '@grafana/flamegraph/dist/esm/FlameGraph/FlameGraphMetadata.mjs';
import { CollapsedMapBuilder, FlameGraphDataContainer } from '@grafana/flamegraph/dist/esm/FlameGraph/dataTransform.mjs';
import FlameGraphHeader from '@grafana/flamegraph/dist/esm/FlameGraphHeader.mjs';
import { useColorScheme } from '@grafana/flamegraph/dist/esm/hooks.mjs';
import { ColorScheme, SelectedView } from '@grafana/flamegraph/dist/esm/types.mjs';

// Below this width the table and the graph do not both fit (Grafana's
// container switches to the graph alone there too).
const BOTH_MIN_WIDTH = 800;
const ROW_H = 24; // px, every row
const TABLE_H = 800; // px, the table's whole height
const OVERSCAN = 6; // rows rendered beyond each edge
const PAD = 8; // px, the table's padding (style.css .tt)

// ---- the table's rows ------------------------------------------------------

// Self and total per function name, in one pass over the frame's columns
// (depth first: a row's ancestors are the rows on the stack above its
// level). A name's total counts only its outermost calls: a row whose name
// is already on its stack is inside one that was counted.
export function functionRows(df) {
  const col = Object.fromEntries(df.fields.map((f) => [f.name, f]));
  const labels = col.label.values;
  const text = col.label.config?.type?.enum?.text;
  let ids = labels, names = text;
  if (!text) { // plain string labels: number them
    const byName = new Map();
    names = [];
    ids = new Int32Array(labels.length);
    for (let i = 0; i < labels.length; i++) {
      let id = byName.get(labels[i]);
      if (id === undefined) byName.set(labels[i], (id = names.push(String(labels[i])) - 1));
      ids[i] = id;
    }
  }
  const level = col.level.values, value = col.value.values, self = col.self.values;
  const valueR = col.valueRight?.values, selfR = col.selfRight?.values;
  const n = names.length;
  const seen = new Uint8Array(n), onStack = new Int32Array(n);
  const sSelf = new Float64Array(n), sTotal = new Float64Array(n);
  const sSelfR = valueR ? new Float64Array(n) : null, sTotalR = valueR ? new Float64Array(n) : null;
  const stack = new Int32Array(1024 + labels.length); // depth can reach the row count
  let depth = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = level[i], id = ids[i];
    while (depth > l) onStack[stack[--depth]]--;
    seen[id] = 1;
    sSelf[id] += self[i];
    if (selfR) sSelfR[id] += selfR[i];
    if (onStack[id] === 0) {
      sTotal[id] += value[i];
      if (valueR) sTotalR[id] += valueR[i];
    }
    onStack[id]++;
    stack[depth++] = id;
  }
  const rows = [];
  for (let id = 0; id < n; id++) {
    if (!seen[id]) continue;
    const r = { name: names[id], self: sSelf[id], total: sTotal[id] };
    if (valueR) {
      r.selfRight = sSelfR[id];
      r.totalRight = sTotalR[id];
    }
    rows.push(r);
  }
  if (valueR) { // the diff's columns: each side's share of its own total
    const left = value[0] || 0, right = valueR[0] || 0;
    for (const r of rows) {
      r.baseline = left ? Math.round((1e4 * r.total) / left) / 100 : 0;
      r.comparison = right ? Math.round((1e4 * r.totalRight) / right) / 100 : 0;
      r.diff = r.baseline === 0 ? (r.comparison > 0 ? Infinity : 0) : ((r.comparison - r.baseline) / r.baseline) * 100;
    }
  }
  return rows;
}

// ---- search ----------------------------------------------------------------

const fuzzy = new uFuzzy();

// The names a search matches: its comma-separated terms, each a regular
// expression, or a fuzzy match where the expression matches nothing or is
// not one (the way Grafana's container searches, so the graph's
// highlighting and the table agree).
function searchLabels(search, labels) {
  if (!search) return undefined;
  const found = new Set();
  for (const term of search.split(',')) {
    if (!term) continue;
    let re = null;
    try {
      re = new RegExp(term);
    } catch { /* not an expression: fuzzy only */ }
    let any = false;
    if (re) {
      for (const l of labels) {
        if (re.test(l)) {
          found.add(l);
          any = true;
        }
      }
    }
    if (!any) for (const i of fuzzy.filter(labels, term) || []) found.add(labels[i]);
  }
  return found;
}

// ---- the table -------------------------------------------------------------

const plainColumns = [
  { key: 'self', title: 'Self', num: true },
  { key: 'total', title: 'Total', num: true },
  { key: 'name', title: 'Symbol name' },
];
const diffColumns = [
  { key: 'baseline', title: 'Baseline', num: true },
  { key: 'comparison', title: 'Comparison', num: true },
  { key: 'diff', title: 'Diff', num: true },
  { key: 'name', title: 'Symbol name' },
];

// Rows by one column. The sort is stable and ties keep the names' order in
// the profile (no string comparisons for the many equal numbers).
function sortRows(rows, key, desc) {
  const out = rows.slice();
  if (key === 'name') out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  else out.sort(desc ? (a, b) => b[key] - a[key] : (a, b) => a[key] - b[key]);
  if (desc && key === 'name') out.reverse();
  return out;
}

function pct(v) {
  return `${v.toFixed(2)}%`;
}

function DiffCell({ v }) {
  if (v === Infinity) return <span className="grew">new</span>;
  if (v === -100) return <span className="shrank">removed</span>;
  return <span className={v > 0 ? 'grew' : v < 0 ? 'shrank' : ''}>{pct(v)}</span>;
}

const TopTable = memo(function TopTable({ rows, diff, format, matched, search, sandwichItem, onSymbol, onSandwich, height }) {
  const columns = diff ? diffColumns : plainColumns;
  const [sort, setSort] = useState({ key: diff ? 'diff' : 'self', desc: true });
  const [top, setTop] = useState(0); // scrolled to, px
  const [active, setActive] = useState(0); // the keyboard's row
  const body = useRef(null);
  const shown = useMemo(() => (matched ? rows.filter((r) => matched.has(r.name)) : rows), [rows, matched]);
  const sorted = useMemo(() => sortRows(shown, sort.key, sort.desc), [shown, sort]);
  const viewH = height - 2 * PAD - ROW_H; // below the header row
  useEffect(() => { // a new list starts at its top
    setActive(0);
    setTop(0);
    if (body.current) body.current.scrollTop = 0;
  }, [sorted]);
  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(sorted.length, Math.ceil((top + viewH) / ROW_H) + OVERSCAN);
  const sortBy = (key) => setSort((s) => (s.key === key ? { key, desc: !s.desc } : { key, desc: key !== 'name' }));
  const moveTo = (i) => {
    const k = Math.max(0, Math.min(sorted.length - 1, i));
    setActive(k);
    const el = body.current;
    if (!el) return;
    if (k * ROW_H < el.scrollTop) el.scrollTop = k * ROW_H;
    else if ((k + 1) * ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = (k + 1) * ROW_H - el.clientHeight;
  };
  const onKey = (e) => {
    const page = Math.max(1, Math.floor(viewH / ROW_H) - 1);
    const to = { ArrowDown: active + 1, ArrowUp: active - 1, PageDown: active + page, PageUp: active - page, Home: 0, End: sorted.length - 1 }[e.key];
    if (to !== undefined) {
      e.preventDefault();
      moveTo(to);
    } else if (e.key === 'Enter' && sorted[active]) {
      e.preventDefault();
      onSymbol(sorted[active].name);
    } else if ((e.key === 's' || e.key === 'S') && sorted[active]) {
      e.preventDefault();
      const n = sorted[active].name;
      onSandwich(sandwichItem === n ? undefined : n);
    }
  };
  const cells = [];
  for (let i = first; i < last; i++) {
    const r = sorted[i];
    const searched = search === `^${escapeStringForRegex(r.name)}$`;
    const sandwiched = sandwichItem === r.name;
    cells.push(
      <div role="row" key={r.name} aria-rowindex={i + 2}
        className={'tt-row' + (i === active ? ' active' : '') + (searched ? ' searched' : '')}
        style={{ transform: `translateY(${i * ROW_H}px)` }} onMouseDown={() => setActive(i)}>
        <div role="cell" className="tt-act">
          <button type="button" tabIndex={-1} className={sandwiched ? 'on' : ''}
            aria-label={sandwiched ? 'Remove from sandwich view' : 'Show in sandwich view'}
            title={sandwiched ? 'Remove from sandwich view' : 'Show in sandwich view'}
            onClick={() => onSandwich(sandwiched ? undefined : r.name)}>⇅</button>
        </div>
        {diff ? (
          <>
            <div role="cell" className="tt-num">{pct(r.baseline)}</div>
            <div role="cell" className="tt-num">{pct(r.comparison)}</div>
            <div role="cell" className="tt-num"><DiffCell v={r.diff} /></div>
          </>
        ) : (
          <>
            <div role="cell" className="tt-num">{format(r.self)}</div>
            <div role="cell" className="tt-num">{format(r.total)}</div>
          </>
        )}
        <div role="cell" className="tt-name" title={r.name} onClick={() => onSymbol(r.name)}>{r.name}</div>
      </div>,
    );
  }
  return (
    <div className={'tt' + (diff ? ' tt-diff' : '')} data-testid="topTable" role="table" aria-label="Top functions"
      aria-rowcount={sorted.length + 1} style={{ height }}>
      <div role="row" className="tt-row tt-head" aria-rowindex={1}>
        <div role="columnheader" className="tt-act" />
        {columns.map((c) => (
          <div key={c.key} role="columnheader" className={c.num ? 'tt-num' : 'tt-name'}
            aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
            onClick={() => sortBy(c.key)}>
            <span>{c.title}</span>{sort.key === c.key ? (sort.desc ? ' ↓' : ' ↑') : ''}
          </div>
        ))}
      </div>
      <div className="tt-body" ref={body} tabIndex={0} onKeyDown={onKey} style={{ height: viewH }}
        onScroll={(e) => setTop(e.currentTarget.scrollTop)}>
        <div style={{ height: sorted.length * ROW_H, position: 'relative' }}>{cells}</div>
      </div>
    </div>
  );
});

// ---- the container ---------------------------------------------------------

// Grafana's data container with the same answers, cheaper: the flame graph
// asks it for a row's label and value once per row when it builds its
// levels and once per bar drawn. Grafana's runs the label's enum index
// through a display processor (which also picks a colour from the theme's
// palette, unused here) and sums a one-element array per value; here the
// label is a lookup in the enum's text and the value the row's number.
// The display of a value (a bar's label, the tooltip) is kept per value:
// many bars share one. Its levels are Grafana's, built from the columns
// without a method call per field, and the nodes of each label (for the
// sandwich view) are collected when first asked for.
class KilnDataContainer extends FlameGraphDataContainer {
  constructor(data, options, theme) {
    super(data, options, theme);
    this.labelText = this.labelField.config?.type?.enum?.text;
    const shown = new Map();
    const display = this.valueDisplayProcessor;
    this.valueDisplayProcessor = (v, decimals) => {
      if (decimals !== undefined) return display(v, decimals);
      let d = shown.get(v);
      if (d === undefined) shown.set(v, (d = display(v)));
      return d;
    };
  }

  // The same levels, items and collapsed groups as Grafana's
  // nestedSetToLevels (dataTransform.mjs), in the same order: a row's
  // parent is the row above it at one level less, and a row after a
  // sibling starts where that sibling ends.
  initLevels() {
    if (this.levels) return;
    const level = this.levelField.values, value = this.valueField.values;
    const right = this.valueRightField?.values;
    const diff = this.isDiffFlamegraph();
    const n = this.data.length;
    const levels = [], rows = new Array(n);
    let parent, offset = 0;
    for (let i = 0; i < n; i++) {
      const l = level[i], prev = i > 0 ? level[i - 1] : undefined;
      const row = (levels[l] ??= []);
      if (prev && prev >= l) {
        const sibling = row[row.length - 1], j = sibling.itemIndexes[0];
        offset = sibling.start + value[j] + (right ? right[j] : 0);
        parent = sibling.parents[0];
      }
      const vr = right ? right[i] : 0;
      const item = {
        itemIndexes: [i], value: value[i] + vr, valueRight: diff ? vr : undefined, start: offset,
        parents: parent && [parent], children: [], level: l,
      };
      if (parent) parent.children.push(item);
      parent = item;
      row.push(item);
      rows[i] = item;
    }
    const collapsed = new CollapsedMapBuilder(this.options?.collapsingThreshold);
    if (this.options?.collapsing) collapsed.addTree(levels[0][0]);
    this.levels = levels;
    this.rows = rows;
    this.uniqueLabelsMap = null;
    this.collapsedMap = collapsed.getCollapsedMap();
  }

  // Each label's nodes in row order, as Grafana's uniqueLabelsMap.
  getNodesWithLabel(label) {
    this.initLevels();
    if (!this.uniqueLabelsMap) {
      const map = Object.create(null);
      for (let i = 0; i < this.rows.length; i++) (map[this.getLabel(i)] ??= []).push(this.rows[i]);
      this.uniqueLabelsMap = map;
    }
    return this.uniqueLabelsMap[label];
  }

  getLabel(index) {
    const t = this.labelText;
    if (t) {
      const l = t[this.labelField.values[index]];
      if (l !== undefined && l !== null) return l;
    }
    return super.getLabel(index);
  }

  getValue(index) {
    return typeof index === 'number' ? this.valueField.values[index] : super.getValue(index);
  }

  getValueRight(index) {
    if (!this.valueRightField) return 0;
    return typeof index === 'number' ? this.valueRightField.values[index] : super.getValueRight(index);
  }

  getSelf(index) {
    return typeof index === 'number' ? this.selfField.values[index] : super.getSelf(index);
  }

  getSelfRight(index) {
    if (!this.selfRightField) return 0;
    return typeof index === 'number' ? this.selfRightField.values[index] : super.getSelfRight(index);
  }
}

// Grafana's header, rendered again only when its props change (not on a
// zoom once the reset button shows, nor for the table's state).
const Header = memo(FlameGraphHeader);

// The element's width, -1 until it has been measured (in a layout effect,
// before the first paint).
function useWidth() {
  const ref = useRef(null);
  const [width, setWidth] = useState(-1);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

// Work a flame graph's first render and first zoom do once per page: each
// new class of emotion's inserts a style rule (which restyles the page),
// each icon is fetched, and the code runs for the first time. warmUp()
// does it with a two-row profile, rendered into an element that is not in
// the page (nothing of it is shown): the container, and what only a zoom
// or a sandwich shows (the header's reset button, the focus and sandwich
// pills). Once per theme: when the chunk has loaded, while the first answer
// is on its way (soon: in a task of its own, as an idle period may not
// come before the answer does, and the answer's render would then do all
// of it), and in idle time after a flame graph's paint in a theme not done
// yet.
const warmed = new Set();
export function warmUp(theme, soon = false) {
  const mode = theme.colors.mode;
  if (warmed.has(mode)) return;
  warmed.add(mode);
  const frame = {
    fields: [
      { name: 'level', type: 'number', values: [0, 1], config: {} },
      { name: 'value', type: 'number', values: [2, 1], config: {} },
      { name: 'self', type: 'number', values: [1, 1], config: {} },
      { name: 'label', type: 'enum', values: [0, 1], config: { type: { enum: { text: ['total', 'f'] } } } },
    ],
    length: 2,
  };
  const idle = (f) => (window.requestIdleCallback ? window.requestIdleCallback(f, { timeout: 1000 }) : setTimeout(f, 50));
  (soon ? (f) => setTimeout(f, 0) : idle)(() => {
    const data = new KilnDataContainer(frame, { collapsing: true }, theme);
    const item = data.getLevels()[1][0];
    const noop = () => {};
    const root = createRoot(document.createElement('div'));
    flushSync(() => root.render(
      <ThemeContext.Provider value={theme}>
        <FlameContainer data={frame} theme={theme} />
        <FlameGraphHeader search="f" setSearch={noop} selectedView={SelectedView.Both} setSelectedView={noop}
          containerWidth={1200} onReset={noop} textAlign="left" onTextAlignChange={noop} showResetButton
          colorScheme={ColorScheme.PackageBased} onColorSchemeChange={noop} stickyHeader={false} isDiffMode={false}
          setCollapsedMap={noop} collapsedMap={data.getCollapsedMap()} />
        <FlameGraphMetadata data={data} focusedItem={{ item, label: 'f', posX: 0, posY: 0 }} sandwichedLabel="f"
          totalTicks={2} onFocusPillClick={noop} onSandwichPillClick={noop} />
      </ThemeContext.Provider>,
    ));
    // the flame graph's levels and canvas come in effects: unmounted once
    // those have run
    idle(() => root.unmount());
  });
}

// A frame's data container (with its levels, built on first use) and its
// table's rows, kept with the frame rather than in the component's memos:
// React drops the memos of a render it does not finish (one interrupted by
// another update, as a flame graph's first render, after its chunk's
// suspense, can be), and they would be built again.
const containers = new WeakMap(); // frame -> theme -> container
const tableRows = new WeakMap(); // frame -> rows
function containerOf(data, theme) {
  let byTheme = containers.get(data);
  if (!byTheme) containers.set(data, (byTheme = new Map()));
  let c = byTheme.get(theme);
  if (!c) byTheme.set(theme, (c = new KilnDataContainer(data, { collapsing: true }, theme)));
  return c;
}
function rowsOf(data) {
  let rows = tableRows.get(data);
  if (!rows) tableRows.set(data, (rows = functionRows(data)));
  return rows;
}

export default function FlameContainer({ data, theme }) {
  const [ref, width] = useWidth();
  const container = containerOf(data, theme);
  // the collapsed groups of this data (a new answer starts from its own)
  const [collapsed, setCollapsed] = useState({ of: null, map: null });
  const collapsedMap = collapsed.of === container ? collapsed.map : container.getCollapsedMap();
  const setCollapsedMap = useCallback((map) => setCollapsed({ of: container, map }), [container]);
  const [colorScheme, setColorScheme] = useColorScheme(container);
  const [search, setSearch] = useState('');
  const [view, setView] = useState(SelectedView.Both);
  const [textAlign, setTextAlign] = useState('left');
  const [sandwichItem, setSandwichItem] = useState();
  const [focused, setFocused] = useState();
  const [rangeMin, setRangeMin] = useState(0);
  const [rangeMax, setRangeMax] = useState(1);

  const resetFocus = useCallback(() => {
    setFocused(undefined);
    setRangeMin(0);
    setRangeMax(1);
  }, []);
  useEffect(() => { // new data: no focus, no sandwich
    resetFocus();
    setSandwichItem(undefined);
  }, [container, resetFocus]);
  useEffect(() => {
    if (width > 0 && width < BOTH_MIN_WIDTH && view === SelectedView.Both) setView(SelectedView.FlameGraph);
  }, [width, view]);

  const rows = rowsOf(data);
  const matched = useMemo(() => searchLabels(search, container.getUniqueLabels()), [search, container]);
  const format = useMemo(() => {
    const p = container.valueDisplayProcessor;
    return (v) => formattedValueToString(p(v));
  }, [container]);
  const onSymbol = useCallback((name) => {
    const anchored = `^${escapeStringForRegex(name)}$`;
    setSearch((s) => (s === anchored ? '' : anchored));
    resetFocus();
  }, [resetFocus]);
  const onSandwich = useCallback((name) => {
    resetFocus();
    setSandwichItem(name);
  }, [resetFocus]);
  const onItemFocused = useCallback((d) => setFocused(d), []);
  const resetSandwich = useCallback(() => setSandwichItem(undefined), []);
  const onReset = useCallback(() => {
    resetFocus();
    resetSandwich();
  }, [resetFocus, resetSandwich]);

  const graph = (
    <FlameGraph data={container} rangeMin={rangeMin} rangeMax={rangeMax} matchedLabels={matched}
      setRangeMin={setRangeMin} setRangeMax={setRangeMax} onItemFocused={onItemFocused} focusedItemData={focused}
      textAlign={textAlign} sandwichItem={sandwichItem} onSandwich={onSandwich} onFocusPillClick={resetFocus}
      onSandwichPillClick={resetSandwich} colorScheme={colorScheme} showFlameGraphOnly={false} collapsing
      selectedView={view} search={search} collapsedMap={collapsedMap} setCollapsedMap={setCollapsedMap} />
  );
  const table = (
    <TopTable rows={rows} diff={container.isDiffFlamegraph()} format={format} matched={matched} search={search}
      sandwichItem={sandwichItem} onSymbol={onSymbol} onSandwich={onSandwich} height={TABLE_H} />
  );
  const vars = {
    '--tt-bg': theme.colors.background.secondary,
    '--tt-line': theme.colors.border.weak,
    '--tt-hover': theme.colors.action.hover,
    '--tt-active': theme.colors.action.selected,
    '--tt-accent': theme.colors.primary.text,
    '--tt-muted': theme.colors.text.secondary,
  };
  // The header, graph and table wait for the width (known before the
  // first paint): rendered without it, all of them would render again
  // at once, the header with other options.
  if (width < 0) return <div ref={ref} className="flame-container" style={vars} />;
  return (
    <div ref={ref} className="flame-container" style={vars}>
      <Header search={search} setSearch={setSearch} selectedView={view} setSelectedView={setView}
        containerWidth={width} onReset={onReset} textAlign={textAlign}
        onTextAlignChange={setTextAlign} showResetButton={Boolean(focused || sandwichItem)} colorScheme={colorScheme}
        onColorSchemeChange={setColorScheme} stickyHeader={false} isDiffMode={container.isDiffFlamegraph()}
        setCollapsedMap={setCollapsedMap} collapsedMap={collapsedMap} />
      <div className="flame-body">
        {view === SelectedView.FlameGraph ? graph : view === SelectedView.TopTable ? table : (
          <div className="flame-both">
            <div className="flame-both-table">{table}</div>
            <div className="flame-both-graph">{graph}</div>
          </div>
        )}
      </div>
    </div>
  );
}
