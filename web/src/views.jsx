// The views: Single, Tag explorer, Comparison, Diff, Ad hoc.
import { lazy, Suspense, useCallback, useMemo, useState } from 'react';
import { adhoc, querier, selectMergeProfile } from './api.js';
import { Err, LabelInput, RangePicker, ServicePicker, TypePicker, useAsync } from './controls.jsx';
import { diffFrames, flamegraphFrame, frameTotal, topFunctions } from './flamedata.js';
import Series, { seriesName } from './Series.jsx';
import { parseTime, stepFor, unitOf, withLabel } from './state.js';

// The flame graph's chunk: main.jsx preloads it after the first paint.
const loadFlame = () => import('./Flame.jsx');
const Flame = lazy(loadFlame);
export const preloadFlame = () => loadFlame().catch(() => {}); // a failure shows where it renders
const timings = (window.__kilnTimings ??= {});
// When each frame's or series' data arrived (the answer parsed), for the
// render figures.
const arrivals = new WeakMap();
function arrived(build) {
  return (answer) => {
    const t = performance.now();
    const frame = build(answer);
    if (frame) arrivals.set(frame, t);
    return frame;
  };
}

export function fmtValue(v, unit) {
  if (v === undefined || v === null) return '';
  if (unit === 'ns') return v >= 60e9 ? `${(v / 60e9).toFixed(1)} min` : v >= 1e9 ? `${(v / 1e9).toFixed(2)} s` : v >= 1e6 ? `${(v / 1e6).toFixed(2)} ms` : `${v} ns`;
  if (unit === 'bytes') return v >= 2 ** 30 ? `${(v / 2 ** 30).toFixed(2)} GiB` : v >= 2 ** 20 ? `${(v / 2 ** 20).toFixed(2)} MiB` : v >= 1024 ? `${(v / 1024).toFixed(2)} KiB` : `${v} B`;
  return v >= 1e9 ? `${(v / 1e9).toFixed(2)} G` : v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e4 ? `${(v / 1e3).toFixed(1)} K` : String(v);
}

function Loading({ what }) {
  return <div className="loading" role="status">Loading {what}…</div>;
}

function FlamePane({ frame, mode, name, testid }) {
  const unit = frame?.fields[1].config?.unit;
  const onRendered = useCallback((ms) => { timings[testid] = ms; }, [testid]);
  if (!frame) return <div className="empty-pane" data-testid={`${testid}-empty`}>No profiles in this selection.</div>;
  const t = frameTotal(frame);
  return (
    <div data-testid={testid}>
      <div className="total" data-testid={`${testid}-total`} data-total={t.left} data-total-right={t.right ?? ''}>
        Total: {fmtValue(t.left, unit)}{t.right !== undefined ? ` → ${fmtValue(t.right, unit)}` : ''}
      </div>
      <Suspense fallback={<Loading what="the flame graph" />}>
        <Flame data={frame} arrived={arrivals.get(frame)} mode={mode} name={name} onRendered={onRendered} />
      </Suspense>
    </div>
  );
}

// One selection: its range in ms, the series and the merged flame graph.
function useSelection(typeId, query, from, until, groupBy = []) {
  const range = useMemo(() => [parseTime(from), parseTime(until)], [from, until]);
  const step = stepFor(range[0], range[1]);
  const series = useAsync(() => (typeId ? querier('SelectSeries', {
    profileTypeID: typeId, labelSelector: query, start: range[0], end: range[1], step, groupBy,
  }).then(arrived((r) => r.series || [])) : Promise.resolve([])), [typeId, query, range[0], range[1], groupBy.join()]);
  return { range, series, type: typeId };
}

function useFlame(typeId, query, range) {
  return useAsync(() => (typeId ? querier('SelectMergeStacktraces', {
    profileTypeID: typeId, labelSelector: query, start: range[0], end: range[1], maxNodes: 16384,
  }).then(arrived((r) => flamegraphFrame(r.flamegraph, unitOf(typeId)))) : Promise.resolve(null)), [typeId, query, range[0], range[1]]);
}

function SeriesPane({ sel, onRange, testid = 'series', mode }) {
  const onRendered = useCallback((ms, points) => { timings[testid] = ms; timings[`${testid}-points`] = points; }, [testid]);
  if (sel.series.error) return <Err error={sel.series.error} />;
  if (sel.series.loading && !sel.series.value) return <Loading what="the time series" />;
  return <Series key={mode} series={sel.series.value} arrived={arrivals.get(sel.series.value)} unit={unitOf(sel.type)} format={fmtValue} fromMs={sel.range[0]} untilMs={sel.range[1]} onRendered={onRendered}
    onSelect={(a, b) => onRange(String(a), String(b))} />;
}

async function exportPprof(typeId, query, range) {
  const bytes = await selectMergeProfile(typeId, query, range[0], range[1]);
  const gz = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
  const blob = await new Response(gz).blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${typeId.split(':')[0]}.pb.gz`;
  a.click();
}

export function QueryBar({ st, set, types, suffix = '', withType = false }) {
  const q = `query${suffix}`, f = `from${suffix}`, u = `until${suffix}`;
  const range = [parseTime(st[f]), parseTime(st[u])];
  return (
    <div className="querybar">
      {!withType ? null : <TypePicker types={types} value={st.type} onChange={(type) => set({ type })} />}
      <ServicePicker id={`service${suffix}`} typeId={st.type} query={st[q]} range={range} onChange={(v) => set({ [q]: v })} />
      <LabelInput id={`selector${suffix}`} value={st[q]} typeId={st.type} range={range} onChange={(v) => set({ [q]: v })} />
      <RangePicker id={`range${suffix}`} from={st[f]} until={st[u]} onChange={(a, b) => set({ [f]: a, [u]: b })} />
    </div>
  );
}

export function SingleView({ st, set, types, mode }) {
  const sel = useSelection(st.type, st.query, st.from, st.until);
  const flame = useFlame(st.type, st.query, sel.range);
  const [exportErr, setExportErr] = useState(null);
  return (
    <section aria-label="Single view">
      <QueryBar st={st} set={set} types={types} withType />
      <SeriesPane sel={sel} mode={mode} onRange={(a, b) => set({ from: a, until: b })} />
      <div className="actions">
        <button type="button" data-testid="export-pprof" onClick={() => exportPprof(st.type, st.query, sel.range).then(() => setExportErr(null), setExportErr)}>Export pprof</button>
      </div>
      <Err error={exportErr} />
      <Err error={flame.error} />
      {flame.loading ? <Loading what="the flame graph" /> : <FlamePane frame={flame.value} mode={mode} name="kiln-flamegraph" testid="flame" />}
    </section>
  );
}

export function TagView({ st, set, types, mode }) {
  const range = useMemo(() => [parseTime(st.from), parseTime(st.until)], [st.from, st.until]);
  const names = useAsync(() => querier('LabelNames', { matchers: [st.query], start: range[0], end: range[1] })
    .then((r) => (r.names || []).filter((n) => !n.startsWith('__'))), [st.query, range[0], range[1]]);
  const tag = st.tag || (names.value || []).find((n) => n !== 'service_name') || 'service_name';
  const sel = useSelection(st.type, st.query, st.from, st.until, [tag]);
  const rows = (sel.series.value || []).map((s) => {
    const v = (s.labels || []).find((l) => l.name === tag)?.value ?? '';
    const total = (s.points || []).reduce((a, p) => a + Number(p.value), 0);
    return { v, total, name: seriesName(s) };
  }).sort((a, b) => b.total - a.total);
  const sum = rows.reduce((a, r) => a + r.total, 0) || 1;
  return (
    <section aria-label="Tag explorer">
      <QueryBar st={st} set={set} types={types} withType />
      <label>Group by{' '}
        <select data-testid="tag" value={tag} onChange={(e) => set({ tag: e.target.value })}>
          {(names.value || [tag]).map((n) => <option key={n} value={n}>{n}</option>)}
        </select>
      </label>
      <Err error={names.error} />
      <SeriesPane sel={sel} mode={mode} onRange={(a, b) => set({ from: a, until: b })} testid="tag-series" />
      <table className="grid" data-testid="tag-table">
        <thead><tr><th>{tag}</th><th>total</th><th>share</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.v}>
              <td><button type="button" className="link" onClick={() => set({ view: 'single', query: withLabel(st.query, tag, r.v) })}>{r.v || '(none)'}</button></td>
              <td data-total={r.total}>{fmtValue(r.total, unitOf(st.type))}</td>
              <td>{((r.total / sum) * 100).toFixed(1)} %</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function CompareView({ st, set, types, mode }) {
  const left = useSelection(st.type, st.query, st.from, st.until);
  const right = useSelection(st.type, st.query2, st.from2, st.until2);
  const lf = useFlame(st.type, st.query, left.range);
  const rf = useFlame(st.type, st.query2, right.range);
  return (
    <section aria-label="Comparison">
      <TypePicker types={types} value={st.type} onChange={(type) => set({ type })} />
      <div className="sides">
        {[[left, lf, '', 'left'], [right, rf, '2', 'right']].map(([sel, fl, sfx, side]) => (
          <div className="side" key={side}>
            <h3>{side === 'left' ? 'Baseline' : 'Comparison'}</h3>
            <QueryBar st={st} set={set} types={types} suffix={sfx} />
            <SeriesPane sel={sel} mode={mode} onRange={(a, b) => set({ [`from${sfx}`]: a, [`until${sfx}`]: b })} testid={`series-${side}`} />
            <Err error={fl.error} />
            {fl.loading ? <Loading what="the flame graph" /> : <FlamePane frame={fl.value} mode={mode} name={`kiln-${side}`} testid={`flame-${side}`} />}
          </div>
        ))}
      </div>
    </section>
  );
}

function ChangesTable({ frame, unit }) {
  const t = frameTotal(frame);
  const rows = topFunctions(frame).map((r) => ({
    ...r, change: (r.selfRight / (t.right || 1) - r.self / (t.left || 1)) * 100,
  })).sort((a, b) => Math.abs(b.change) - Math.abs(a.change)).slice(0, 25);
  return (
    <table className="grid" data-testid="diff-table">
      <caption>Largest changes (share of self time)</caption>
      <thead><tr><th>function</th><th>baseline self</th><th>comparison self</th><th>change</th></tr></thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.name}>
            <td>{r.name}</td><td>{fmtValue(r.self, unit)}</td><td>{fmtValue(r.selfRight, unit)}</td>
            <td className={r.change > 0 ? 'grew' : 'shrank'}>{r.change > 0 ? '+' : ''}{r.change.toFixed(2)} %</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DiffView({ st, set, types, mode }) {
  const left = useSelection(st.type, st.query, st.from, st.until);
  const right = useSelection(st.type, st.query2, st.from2, st.until2);
  const unit = unitOf(st.type);
  const diff = useAsync(() => (st.type ? querier('Diff', {
    left: { profileTypeID: st.type, labelSelector: st.query, start: left.range[0], end: left.range[1], maxNodes: 16384 },
    right: { profileTypeID: st.type, labelSelector: st.query2, start: right.range[0], end: right.range[1], maxNodes: 16384 },
  }).then(arrived((r) => flamegraphFrame(r.flamegraph, unit, true))) : Promise.resolve(null)),
  [st.type, st.query, st.query2, left.range[0], left.range[1], right.range[0], right.range[1]]);
  return (
    <section aria-label="Diff">
      <TypePicker types={types} value={st.type} onChange={(type) => set({ type })} />
      <div className="sides">
        {[[left, '', 'Baseline'], [right, '2', 'Comparison']].map(([sel, sfx, title]) => (
          <div className="side" key={title}>
            <h3>{title}</h3>
            <QueryBar st={st} set={set} types={types} suffix={sfx} />
            <SeriesPane sel={sel} mode={mode} onRange={(a, b) => set({ [`from${sfx}`]: a, [`until${sfx}`]: b })} testid={`series-${title.toLowerCase()}`} />
          </div>
        ))}
      </div>
      <p className="legend"><span className="grew">red: grew</span> · <span className="shrank">green: shrank</span> (baseline → comparison)</p>
      <Err error={diff.error} />
      {diff.loading ? <Loading what="the diff" /> : (
        <>
          <FlamePane frame={diff.value} mode={mode} name="kiln-diff" testid="flame-diff" />
          {diff.value ? <ChangesTable frame={diff.value} unit={unit} /> : null}
        </>
      )}
    </section>
  );
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',')[1] || '');
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

// adhocprofiles.v1 answers a Pyroscope flamebearer profile as a JSON string.
function adhocFlame(resp) {
  const fb = JSON.parse(resp.flamebearerProfile || resp.flamebearer_profile || '{}');
  const units = fb.metadata?.units;
  const unit = units === 'samples' || units === 'nanoseconds' ? 'short' : units === 'bytes' ? 'bytes' : 'short';
  return { fg: fb.flamebearer, unit };
}

export function AdHocView({ mode }) {
  const [files, setFiles] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const upload = async (list) => {
    setBusy(true);
    setError(null);
    try {
      const out = [];
      for (const f of [...list].slice(0, 2)) {
        const r = await adhoc('Upload', { name: f.name, profile: await readBase64(f), maxNodes: 16384 });
        out.push({ name: f.name, id: r.id, ...adhocFlame(r) });
      }
      setFiles(out);
    } catch (e) {
      if (e.status === 404 || e.status === 501 || e.code === 'unimplemented' || e.code === 'not_found') {
        e.message = `ad hoc profiles are not served by this Kiln: adhocprofiles.v1 answered ${e.status} (${e.message})`;
      }
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const frame = useMemo(() => {
    if (files.length === 2) return diffFrames(files[0].fg, files[1].fg, files[0].unit);
    if (files.length === 1) return flamegraphFrame({ names: files[0].fg.names, levels: files[0].fg.levels }, files[0].unit);
    return null;
  }, [files]);
  return (
    <section aria-label="Ad hoc">
      <div className="drop" data-testid="adhoc-drop"
        onDragOver={(e) => e.preventDefault()} onDrop={(e) => { e.preventDefault(); upload(e.dataTransfer.files); }}>
        <p>Drop one profile to view it, or two to diff them (pprof, folded, JFR, speedscope, OTLP), or</p>
        <input type="file" multiple data-testid="adhoc-file" aria-label="profile files" onChange={(e) => upload(e.target.files)} />
      </div>
      <Err error={error} />
      {busy ? <Loading what="the upload" /> : null}
      {files.length ? <p data-testid="adhoc-names">{files.map((f) => f.name).join(' → ')}</p> : null}
      {frame ? <FlamePane frame={frame} mode={mode} name="kiln-adhoc" testid="flame-adhoc" /> : null}
    </section>
  );
}
