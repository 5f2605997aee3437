// The whole UI state lives in the URL's query string, so a copied address
// opens the same view, selection, time range, tenant and theme.
export const DEFAULTS = {
  view: 'single',
  tenant: '',
  theme: 'dark',
  type: '',
  query: '{}',
  from: 'now-1h',
  until: 'now',
  query2: '{}',
  from2: 'now-1h',
  until2: 'now',
  tag: '',
};

export function readState(search = window.location.search) {
  const p = new URLSearchParams(search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) if (p.has(k)) s[k] = p.get(k);
  return s;
}

export function stateUrl(s) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (v !== DEFAULTS[k] && v !== undefined) p.set(k, v);
  const q = p.toString();
  return window.location.pathname + (q ? '?' + q : '');
}

const UNITS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

// "now", "now-15m", or milliseconds since the epoch, to milliseconds.
export function parseTime(t, now = Date.now()) {
  if (t === 'now') return now;
  const m = /^now-(\d+)([smhdw])$/.exec(t);
  if (m) return now - Number(m[1]) * UNITS[m[2]];
  const n = Number(t);
  return Number.isFinite(n) ? n : now;
}

export const PRESETS = [
  ['now-5m', 'Last 5 minutes'],
  ['now-15m', 'Last 15 minutes'],
  ['now-1h', 'Last hour'],
  ['now-6h', 'Last 6 hours'],
  ['now-24h', 'Last 24 hours'],
  ['now-7d', 'Last 7 days'],
];

// A step (seconds) that gives at most about 1,500 points over the range.
export function stepFor(fromMs, untilMs) {
  const secs = Math.max(1, (untilMs - fromMs) / 1000);
  return Math.max(10, Math.ceil(secs / 1440));
}

// The profile type's unit as Grafana names it (for value formatting).
export function unitOf(typeId) {
  const unit = (typeId || '').split(':')[2] || '';
  if (unit === 'nanoseconds') return 'ns';
  if (unit === 'bytes') return 'bytes';
  return 'short';
}

// The service_name matcher's value in a FlameQL selector, or ''.
export function serviceOf(query) {
  const m = /service_name\s*=\s*"([^"]*)"/.exec(query || '');
  return m ? m[1] : '';
}

// The selector with service_name set to svc (or removed when svc is '').
export function withLabel(query, name, value) {
  const inner = (query || '{}').trim().replace(/^\{|\}$/g, '').trim();
  const re = new RegExp(`\\s*${name}\\s*=~?\\s*"[^"]*"\\s*,?`);
  let rest = inner.replace(re, '').trim().replace(/^,|,$/g, '').trim();
  if (value) rest = `${name}="${value}"` + (rest ? ', ' + rest : '');
  return `{${rest}}`;
}
