// Kiln's web UI: the shell (header, tenant, theme, views) and the state in
// the URL. Only public APIs: querier.v1, adhocprofiles.v1, settings.v1.
import { useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { querier, setTenant } from './api.js';
import { Err, useAsync } from './controls.jsx';
import { readState, stateUrl } from './state.js';
import { AdHocView, CompareView, DiffView, preloadFlame, SingleView, TagView } from './views.jsx';
import './style.css';

const VIEWS = [
  ['single', 'Single', SingleView],
  ['tags', 'Tag explorer', TagView],
  ['compare', 'Comparison', CompareView],
  ['diff', 'Diff', DiffView],
  ['adhoc', 'Ad hoc', AdHocView],
];

function Copyable({ label, text }) {
  const [done, setDone] = useState(false);
  return (
    <figure className="example">
      <figcaption>{label}{' '}
        <button type="button" onClick={() => navigator.clipboard?.writeText(text).then(() => setDone(true), () => {})}>
          {done ? 'Copied' : 'Copy'}
        </button>
      </figcaption>
      <pre>{text}</pre>
    </figure>
  );
}

// No profiles yet for this tenant: how to send some.
function Empty({ tenant }) {
  const host = window.location.host;
  const org = tenant ? ` -H 'X-Scope-OrgID: ${tenant}'` : '';
  return (
    <div className="emptystate" data-testid="empty">
      <h2>No profiles yet{tenant ? ` for tenant ${tenant}` : ''}</h2>
      <p>Send some with any Pyroscope client; they show up here within seconds.</p>
      <Copyable label="Grafana Alloy" text={`pyroscope.write "kiln" {\n  endpoint {\n    url = "http://${host}"${tenant ? `\n    headers = { "X-Scope-OrgID" = "${tenant}" }` : ''}\n  }\n}`} />
      <Copyable label="Go SDK (pyroscope-go)" text={`pyroscope.Start(pyroscope.Config{\n  ApplicationName: "my.app",\n  ServerAddress:   "http://${host}",${tenant ? `\n  TenantID:        "${tenant}",` : ''}\n})`} />
      <Copyable label="Python SDK (pyroscope-io)" text={`pyroscope.configure(application_name="my.app", server_address="http://${host}"${tenant ? `, tenant_id="${tenant}"` : ''})`} />
      <Copyable label="curl (folded stacks)" text={`printf 'main;work;compute 100\\nmain;idle 10\\n' |\n  curl -g --data-binary @-${org} \\\n  'http://${host}/ingest?name=my.app.cpu{env=dev}&format=folded&from=now&until=now'`} />
    </div>
  );
}

function App() {
  const [st, setSt] = useState(readState);
  const set = useCallback((patch) => {
    setSt((s) => {
      const n = { ...s, ...patch };
      window.history.pushState(null, '', stateUrl(n));
      return n;
    });
  }, []);
  useEffect(() => {
    const pop = () => setSt(readState());
    window.addEventListener('popstate', pop);
    return () => window.removeEventListener('popstate', pop);
  }, []);
  setTenant(st.tenant);
  useEffect(() => {
    document.body.className = st.theme;
    document.documentElement.className = '';
    try { localStorage.setItem('kiln.theme', st.theme); } catch { /* private mode */ }
  }, [st.theme]);
  const [tenantText, setTenantText] = useState(st.tenant);
  const types = useAsync(() => querier('ProfileTypes', {}).then((r) => r.profileTypes || []), [st.tenant]);
  const list = types.value || [];
  useEffect(() => {
    if (list.length && !list.some((t) => t.ID === st.type)) {
      const cpu = list.find((t) => /cpu/.test(t.ID)) || list[0];
      setSt((s) => ({ ...s, type: cpu.ID }));
    }
  }, [list, st.type]);
  const View = (VIEWS.find(([v]) => v === st.view) || VIEWS[0])[2];
  const noData = types.value && list.length === 0 && st.view !== 'adhoc';
  return (
    <>
      <header>
        <h1>Kiln</h1>
        <nav role="tablist" aria-label="Views">
          {VIEWS.map(([v, name]) => (
            <button key={v} type="button" role="tab" data-testid={`tab-${v}`} aria-selected={st.view === v}
              className={st.view === v ? 'active' : ''} onClick={() => set({ view: v })}>{name}</button>
          ))}
        </nav>
        <form className="tenant" onSubmit={(e) => { e.preventDefault(); set({ tenant: tenantText.trim() }); }}>
          <label>Tenant{' '}
            <input data-testid="tenant" value={tenantText} placeholder="anonymous" size={12}
              onChange={(e) => setTenantText(e.target.value)} onBlur={() => set({ tenant: tenantText.trim() })} />
          </label>
        </form>
        <button type="button" data-testid="theme" aria-label="switch theme"
          onClick={() => set({ theme: st.theme === 'dark' ? 'light' : 'dark' })}>
          {st.theme === 'dark' ? 'Light theme' : 'Dark theme'}
        </button>
        <button type="button" data-testid="share" onClick={() => navigator.clipboard?.writeText(window.location.href).catch(() => {})}>
          Copy link
        </button>
      </header>
      <main>
        <Err error={types.error} />
        {noData ? <Empty tenant={st.tenant} /> : types.loading && !types.value ? <div role="status">Loading…</div> : (
          <View st={st} set={set} types={list} mode={st.theme} />
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')).render(<App />);
// The flame graph's code (its own chunk), fetched once the shell has been
// painted, while the first queries run: an answer that comes first would
// otherwise wait for it.
requestAnimationFrame(() => setTimeout(preloadFlame, 0));
