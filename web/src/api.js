// Kiln's public APIs over Connect JSON (and, for the pprof export, Connect
// proto). Every call carries the selected tenant as X-Scope-OrgID. A failed
// call throws an ApiError holding the server's own code and message.
let tenant = '';

export function setTenant(t) {
  tenant = t;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(contentType) {
  const h = { 'Content-Type': contentType };
  if (tenant) h['X-Scope-OrgID'] = tenant;
  return h;
}

async function failure(res) {
  const text = await res.text();
  try {
    const j = JSON.parse(text);
    return new ApiError(res.status, j.code || String(res.status), j.message || text);
  } catch {
    return new ApiError(res.status, String(res.status), text.trim() || res.statusText);
  }
}

export async function call(service, method, body) {
  const res = await fetch(`/${service}/${method}`, {
    method: 'POST',
    headers: headers('application/json'),
    body: JSON.stringify(body ?? {}),
  });
  if (!res.ok) throw await failure(res);
  return res.json();
}

export const querier = (method, body) => call('querier.v1.QuerierService', method, body);
export const adhoc = (method, body) => call('adhocprofiles.v1.AdHocProfileService', method, body);
export const settings = (method, body) => call('settings.v1.SettingsService', method, body);

// --- protobuf, just enough to send a SelectMergeProfileRequest ------------
function varint(out, n) {
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function pbString(out, field, s) {
  const b = new TextEncoder().encode(s);
  varint(out, (field << 3) | 2);
  varint(out, b.length);
  for (const x of b) out.push(x);
}

function pbInt(out, field, n) {
  varint(out, field << 3);
  varint(out, n);
}

// The merged profile as pprof bytes (google.v1.Profile, uncompressed).
export async function selectMergeProfile(typeId, selector, start, end) {
  const body = [];
  pbString(body, 1, typeId);
  pbString(body, 2, selector);
  pbInt(body, 3, start);
  pbInt(body, 4, end);
  const res = await fetch('/querier.v1.QuerierService/SelectMergeProfile', {
    method: 'POST',
    headers: headers('application/proto'),
    body: new Uint8Array(body),
  });
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
}
