// Kiln's flame graphs (Pyroscope's flamebearer level layout) as the nested
// set data frame @grafana/flamegraph draws: one row per node, depth first,
// with level, value (total), self and label; diffs add valueRight and
// selfRight (the right side), value and self being the left side.
// Plain DataFrame objects (no @grafana/data here: this module is in the
// first-paint bundle, the flame graph's chunk brings @grafana/data later).
const FieldType = { number: 'number', string: 'string' };
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

function frame(names, rows, diff, unit) {
  const fields = [
    { name: 'level', type: FieldType.number, values: rows.map((r) => r[1]) },
    { name: 'value', type: FieldType.number, values: rows.map((r) => r[0].lt), config: { unit } },
    { name: 'self', type: FieldType.number, values: rows.map((r) => r[0].ls), config: { unit } },
    { name: 'label', type: FieldType.string, values: rows.map((r) => names[r[0].name] ?? '?') },
  ];
  if (diff) {
    fields.push({ name: 'valueRight', type: FieldType.number, values: rows.map((r) => r[0].rt), config: { unit } });
    fields.push({ name: 'selfRight', type: FieldType.number, values: rows.map((r) => r[0].rs), config: { unit } });
  }
  return createDataFrame({ name: 'response', meta: { preferredVisualisationType: 'flamegraph' }, fields });
}

// A querier.v1 FlameGraph or FlameGraphDiff message (JSON) as a data frame.
export function flamegraphFrame(fg, unit, diff = false) {
  if (!fg || !fg.levels || fg.levels.length === 0) return null;
  return frame(fg.names, preorder(parseLevels(fg.levels, diff)), diff, unit);
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
