// Pickers: profile type, service, the FlameQL label selector with completion
// (LabelNames / LabelValues), the time range with presets.
import { useEffect, useRef, useState } from 'react';
import { querier } from './api.js';
import { PRESETS, parseTime, serviceOf, withLabel } from './state.js';

function useAsync(fn, deps) {
  const [st, set] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    set((s) => ({ ...s, loading: true }));
    fn().then((v) => live && set({ value: v }), (e) => live && set({ error: e }));
    return () => { live = false; };
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps
  return st;
}
export { useAsync };

export function Err({ error }) {
  if (!error) return null;
  return <div className="error" role="alert">Error{error.code ? ` (${error.code})` : ''}: {error.message}</div>;
}

export function TypePicker({ types, value, onChange, id = 'type' }) {
  return (
    <label>Profile type{' '}
      <select id={id} data-testid={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {types.map((t) => <option key={t.ID} value={t.ID}>{t.name ? `${t.name} (${t.sample_type || t.sampleType})` : t.ID}</option>)}
      </select>
    </label>
  );
}

export function ServicePicker({ typeId, query, range, onChange, id = 'service' }) {
  const services = useAsync(() => querier('LabelValues', {
    name: 'service_name', matchers: typeId ? [`{__profile_type__="${typeId}"}`] : [], start: range[0], end: range[1],
  }).then((r) => r.names || []), [typeId, range[0], range[1]]);
  const cur = serviceOf(query);
  const names = services.value || [];
  return (
    <label>Service{' '}
      <select id={id} data-testid={id} value={cur} onChange={(e) => onChange(withLabel(query, 'service_name', e.target.value))}>
        <option value="">all services</option>
        {cur && !names.includes(cur) ? <option value={cur}>{cur}</option> : null}
        {names.map((n) => <option key={n} value={n}>{n}</option>)}
      </select>
    </label>
  );
}

// What to complete at the caret: a label name, or a value of a label.
function completionContext(text, caret) {
  const before = text.slice(0, caret);
  let m = /([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!=|!~|=)\s*"([^"]*)$/.exec(before);
  if (m) return { kind: 'value', label: m[1], prefix: m[3], start: caret - m[3].length };
  m = /(^\{|,)\s*([A-Za-z0-9_.]*)$/.exec(before);
  if (m) return { kind: 'name', prefix: m[2], start: caret - m[2].length };
  return null;
}

export function LabelInput({ value, onChange, typeId, range, id = 'selector' }) {
  const [text, setText] = useState(value);
  const [open, setOpen] = useState(false);
  const [items, setItems] = useState([]);
  const [active, setActive] = useState(0);
  const ctx = useRef(null);
  const input = useRef(null);
  useEffect(() => setText(value), [value]);
  const refresh = async (t, caret) => {
    const c = completionContext(t, caret);
    ctx.current = c;
    if (!c) { setOpen(false); return; }
    const base = { start: range[0], end: range[1], matchers: typeId ? [`{__profile_type__="${typeId}"}`] : [] };
    try {
      const r = c.kind === 'name' ? await querier('LabelNames', base) : await querier('LabelValues', { ...base, name: c.label });
      const list = (r.names || []).filter((n) => !n.startsWith('__') && n.startsWith(c.prefix));
      setItems(list.slice(0, 50));
      setActive(0);
      setOpen(list.length > 0);
    } catch {
      setOpen(false);
    }
  };
  const accept = (item) => {
    const c = ctx.current;
    const caret = input.current.selectionStart;
    const ins = c.kind === 'name' ? `${item}="` : `${item}"`;
    const t = text.slice(0, c.start) + ins + text.slice(caret);
    setText(t);
    setOpen(false);
    const pos = c.start + ins.length;
    requestAnimationFrame(() => { input.current.setSelectionRange(pos, pos); refresh(t, pos); });
  };
  const onKey = (e) => {
    if (open && e.key === 'ArrowDown') { e.preventDefault(); setActive((a) => (a + 1) % items.length); }
    else if (open && e.key === 'ArrowUp') { e.preventDefault(); setActive((a) => (a - 1 + items.length) % items.length); }
    else if (open && (e.key === 'Enter' || e.key === 'Tab')) { e.preventDefault(); accept(items[active]); }
    else if (e.key === 'Escape') setOpen(false);
    else if (e.key === 'Enter') onChange(text);
  };
  return (
    <div className="selector">
      <label htmlFor={id}>Labels (FlameQL)</label>
      <input id={id} data-testid={id} ref={input} value={text} spellCheck={false} role="combobox"
        aria-expanded={open} aria-controls={`${id}-list`} aria-autocomplete="list"
        onChange={(e) => { setText(e.target.value); refresh(e.target.value, e.target.selectionStart); }}
        onFocus={(e) => refresh(e.target.value, e.target.selectionStart)}
        onKeyDown={onKey} onBlur={() => setTimeout(() => setOpen(false), 150)} />
      <button type="button" onClick={() => onChange(text)}>Run</button>
      {open ? (
        <ul id={`${id}-list`} role="listbox" className="completions">
          {items.map((it, i) => (
            <li key={it} role="option" aria-selected={i === active} className={i === active ? 'active' : ''}
              onMouseDown={(e) => { e.preventDefault(); accept(it); }}>{it}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

function fmt(t) {
  if (t.startsWith('now')) return t;
  return new Date(parseTime(t)).toISOString().replace('T', ' ').slice(0, 19);
}

export function RangePicker({ from, until, onChange, id = 'range' }) {
  const preset = until === 'now' && PRESETS.some(([p]) => p === from) ? from : '';
  return (
    <label>Range{' '}
      <select id={id} data-testid={id} value={preset} onChange={(e) => onChange(e.target.value, 'now')}>
        {preset ? null : <option value="">{fmt(from)} to {fmt(until)}</option>}
        {PRESETS.map(([p, name]) => <option key={p} value={p}>{name}</option>)}
      </select>
    </label>
  );
}
