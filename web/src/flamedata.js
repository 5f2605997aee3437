// Kiln's flame graphs (Pyroscope's flamebearer level layout) as the nested
// set data frame @grafana/flamegraph draws: one row per node, depth first,
// with level, value (total), self and label; diffs add valueRight and
// selfRight (the right side), value and self being the left side.
// The label is an enum field, the shape Grafana's Pyroscope data source
// sends: each row holds an index into config.type.enum.text (the profile's
// names), so the component takes the names as they are instead of
// collecting the distinct labels of every row.
// Plain DataFrame objects (no @grafana/data here: this module is in the
// first-paint bundle, the flame graph's chunk brings @grafana/data later).
const FieldType = { number: 'number', string: 'string', enum: 'enum' };
function createDataFrame({ name, meta, fields }) {
  return { name, meta, fields: fields.map((f) => ({ config: {}, ...f })), length: fields[0].values.length };
}

// Absolute nodes per level from delta-encoded levels (step numbers per node).
function parseLevels(levels, diff) {
  const step = diff ? 7 : 4;
  return levels.map((lv) => {
    const v = (Array.isArray(lv) ? lv : lv.values).map(Number); // arrays have .values() too
    const out = [];
    let lx = 0, rx = 0;
    for (let i = 0; i + step <= v.length; i += step) {
      if (diff) {
        lx += v[i];
        rx += v[i + 3];
        out.push({ x: lx + rx, w: v[i + 1] + v[i + 4], lt: v[i + 1], ls: v[i + 2], rt: v[i + 4], rs: v[i + 5], name: v[i + 6] });
        lx += v[i + 1];
        rx += v[i + 4];
      } else {
        lx += v[i];
        out.push({ x: lx, w: v[i + 1], lt: v[i + 1], ls: v[i + 2], name: v[i + 3] });
        lx += v[i + 1];
      }
    }
    return out;
  });
}

// Depth-first order: a node's children are the next level's nodes inside it.
function preorder(levels) {
  const rows = [];
  const ptr = new Array(levels.length + 1).fill(0);
  const stack = [];
  for (const root of levels[0] || []) stack.push([root, 0]);
  stack.reverse();
  while (stack.length) {
    const [n, l] = stack.pop();
    rows.push([n, l]);
    const next = levels[l + 1];
    if (!next) continue;
    const kids = [];
    const end = n.x + n.w;
    while (ptr[l + 1] < next.length && next[ptr[l + 1]].x < end) kids.push(next[ptr[l + 1]++]);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], l + 1]);
  }
  return rows;
}

// The least and largest value, as @grafana/data's reducers cache them in
// a field's state: the value's display processor asks for them (its colour
// scale, unused by the flame graph) and would otherwise go over the column.
function minMax(values) {
  let min = Infinity, max = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || Number.isNaN(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? { min, max } : {};
}

// The frame from its columns; label holds indexes into names (a name
// index out of range shows as '?').
function columnsFrame(names, c, diff, unit) {
  const text = names.slice();
  let unknown = -1;
  for (let i = 0; i < c.label.length; i++) {
    if (c.label[i] >= 0 && c.label[i] < names.length) continue;
    if (unknown < 0) unknown = text.push('?') - 1;
    c.label[i] = unknown;
  }
  const fields = [
    { name: 'level', type: FieldType.number, values: c.level },
    { name: 'value', type: FieldType.number, values: c.value, config: { unit }, state: { calcs: minMax(c.value) } },
    { name: 'self', type: FieldType.number, values: c.self, config: { unit } },
    { name: 'label', type: FieldType.enum, values: c.label, config: { type: { enum: { text } } } },
  ];
  if (diff) {
    fields.push({ name: 'valueRight', type: FieldType.number, values: c.valueRight, config: { unit } });
    fields.push({ name: 'selfRight', type: FieldType.number, values: c.selfRight, config: { unit } });
  }
  return createDataFrame({ name: 'response', meta: { preferredVisualisationType: 'flamegraph' }, fields });
}

function frame(names, rows, diff, unit) {
  const c = {
    level: rows.map((r) => r[1]), value: rows.map((r) => r[0].lt), self: rows.map((r) => r[0].ls),
    label: rows.map((r) => r[0].name),
  };
  if (diff) {
    c.valueRight = rows.map((r) => r[0].rt);
    c.selfRight = rows.map((r) => r[0].rs);
  }
  return columnsFrame(names, c, diff, unit);
}

// The levels' nodes in depth-first order, straight into the frame's
// columns: a node's children are the next level's nodes that start inside
// it. Numbers only (no object per node): the flame graph's own build of
// the same 16,384 rows comes next and the less garbage before it, the
// better.
function preorderColumns(levels, diff) {
  const step = diff ? 7 : 4;
  const lv = levels.map((l) => (Array.isArray(l) ? l : l.values).map(Number)); // arrays have .values() too
  const depth = lv.length;
  // absolute start of each node (x, both sides together), per level
  const xs = lv.map((v) => {
    const x = new Float64Array(Math.floor(v.length / step));
    let lx = 0, rx = 0;
    for (let i = 0, n = 0; n < x.length; i += step, n++) {
      lx += v[i];
      if (diff) rx += v[i + 3];
      x[n] = lx + rx;
      lx += v[i + 1];
      if (diff) rx += v[i + 4];
    }
    return x;
  });
  const c = { level: [], value: [], self: [], label: [] };
  if (diff) {
    c.valueRight = [];
    c.selfRight = [];
  }
  const ptr = new Int32Array(depth + 1);
  const stackLevel = [], stackNode = [];
  for (let n = xs[0].length - 1; n >= 0; n--) {
    stackLevel.push(0);
    stackNode.push(n);
  }
  while (stackLevel.length) {
    const l = stackLevel.pop(), n = stackNode.pop();
    const v = lv[l], i = n * step;
    c.level.push(l);
    if (diff) {
      c.value.push(v[i + 1]);
      c.self.push(v[i + 2]);
      c.valueRight.push(v[i + 4]);
      c.selfRight.push(v[i + 5]);
      c.label.push(v[i + 6]);
    } else {
      c.value.push(v[i + 1]);
      c.self.push(v[i + 2]);
      c.label.push(v[i + 3]);
    }
    if (l + 1 >= depth) continue;
    const next = xs[l + 1];
    const end = xs[l][n] + (diff ? v[i + 1] + v[i + 4] : v[i + 1]);
    const first = ptr[l + 1];
    while (ptr[l + 1] < next.length && next[ptr[l + 1]] < end) ptr[l + 1]++;
    for (let k = ptr[l + 1] - 1; k >= first; k--) {
      stackLevel.push(l + 1);
      stackNode.push(k);
    }
  }
  return c;
}

// A querier.v1 FlameGraph or FlameGraphDiff message (JSON) as a data frame.
export function flamegraphFrame(fg, unit, diff = false) {
  if (!fg || !fg.levels || fg.levels.length === 0) return null;
  return columnsFrame(fg.names || [], preorderColumns(fg.levels, diff), diff, unit);
}

// The frame's label of each row, as text (the label field is an enum).
export function labelsOf(df) {
  const f = df.fields.find((x) => x.name === 'label');
  const text = f.config?.type?.enum?.text;
  return text ? f.values.map((i) => text[i]) : f.values;
}

// Two single flame graphs merged by call path into one diff frame (the ad
// hoc view diffs two uploaded files this way; Kiln's Diff does it server-side).
export function diffFrames(a, b, unit) {
  const tree = new Map();
  const add = (fg, side) => {
    const rows = preorder(parseLevels(fg.levels, false));
    const path = [];
    for (const [n, l] of rows) {
      path.length = l;
      path.push(fg.names[n.name]);
      const key = path.join('\u0000');
      let t = tree.get(key);
      if (!t) tree.set(key, (t = { path: path.slice(), lt: 0, ls: 0, rt: 0, rs: 0 }));
      t[side + 't'] += n.lt;
      t[side + 's'] += n.ls;
    }
  };
  add(a, 'l');
  add(b, 'r');
  const keys = [...tree.keys()].sort(); // '\u0000' sorts first: parents before children
  const names = [];
  const rows = keys.map((k) => {
    const t = tree.get(k);
    names.push(t.path[t.path.length - 1]);
    return [{ lt: t.lt, ls: t.ls, rt: t.rt, rs: t.rs, name: names.length - 1 }, t.path.length - 1];
  });
  return frame(names, rows, true, unit);
}

// Functions by self value from a frame, largest first: [{name, self, total}].
export function topFunctions(df) {
  const f = Object.fromEntries(df.fields.map((x) => [x.name, x.values]));
  f.label = labelsOf(df);
  const by = new Map();
  for (let i = 0; i < f.label.length; i++) {
    const e = by.get(f.label[i]) || { name: f.label[i], self: 0, total: 0, selfRight: 0, totalRight: 0 };
    e.self += f.self[i];
    e.total += f.value[i];
    if (f.selfRight) {
      e.selfRight += f.selfRight[i];
      e.totalRight += f.valueRight[i];
    }
    by.set(f.label[i], e);
  }
  return [...by.values()];
}

// The frame's root total (both sides for a diff).
export function frameTotal(df) {
  const f = Object.fromEntries(df.fields.map((x) => [x.name, x.values]));
  return { left: f.value[0] || 0, right: f.valueRight ? f.valueRight[0] : undefined };
}
