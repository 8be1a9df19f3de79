// The read API (docs/http-api.md) as small async functions. Responses are decoded as runlane.wire
// writes them: {"$float": "NaN"} becomes NaN and a user object escaped as {"$esc": [k, v]} comes back.

const BASE = "/api/v1";
const KEY_STORAGE = "runlane.apiKey";

// A server with API keys needs "Authorization: Bearer <key>" on every route; the key a person enters is
// kept in this browser's localStorage (never in a URL) and sent with every request.
export const auth = {
  key: () => localStorage.getItem(KEY_STORAGE),
  set(key) {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    listeners.forEach((fn) => fn());
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};
const listeners = new Set();
const unauthorized = new Set();

/** Subscribe to 401 answers (the shell shows the key form). */
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

function headers(extra) {
  const key = auth.key();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const FLOATS = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

function untag(_key, value) {
  // JSON.parse calls a reviver bottom-up, like Python's object_hook, so escapes see decoded members.
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  if (keys[0] === "$float" && value.$float in FLOATS) return FLOATS[value.$float];
  if (keys[0] === "$esc" && Array.isArray(value.$esc) && value.$esc.length === 2) {
    return { [value.$esc[0]]: value.$esc[1] };
  }
  return value;
}

export function decode(text) {
  return JSON.parse(text, untag);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((item) => search.append(key, String(item)));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function get(path, params, { signal } = {}) {
  let response;
  try {
    response = await fetch(BASE + path + query(params), { signal, headers: headers({ Accept: "application/json" }) });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "unreachable", "The runlane server cannot be reached. Is it still running?");
  }
  const text = await response.text();
  if (!response.ok) {
    let error = { code: "error", message: `${response.status} ${response.statusText}` };
    try {
      error = decode(text).error || error;
    } catch {
      // not JSON: keep the HTTP status line as the message
    }
    if (response.status === 401) unauthorized.forEach((fn) => fn(error.message));
    throw new ApiError(response.status, error.code, error.message, error.field);
  }
  return decode(text);
}

export const blobUrl = (name) => `${BASE}/blobs/${encodeURIComponent(name)}`;

const enc = encodeURIComponent;

export const api = {
  projects: (opts) => get("/projects", null, opts),
  runs: (params, opts) => get("/runs", params, opts),
  run: (ref, opts) => get(`/runs/${enc(ref)}`, null, opts),
  lineage: (ref, opts) => get(`/runs/${enc(ref)}/lineage`, null, opts),
  metrics: (ref, opts) => get(`/runs/${enc(ref)}/metrics`, null, opts),
  history: (ref, params, opts) => get(`/runs/${enc(ref)}/history`, params, opts),
  logs: (ref, params, opts) => get(`/runs/${enc(ref)}/logs`, params, opts),
  images: (ref, params, opts) => get(`/runs/${enc(ref)}/images`, params, opts),
  system: (ref, params, opts) => get(`/runs/${enc(ref)}/system`, params, opts),
  file: (ref, kind, opts) => get(`/runs/${enc(ref)}/files/${enc(kind)}`, null, opts),
  async blob(name, { signal } = {}) {
    const response = await fetch(blobUrl(name), { signal, headers: headers({}) });
    if (!response.ok) throw new ApiError(response.status, "not_found", `blob ${name} could not be read`);
    return response.blob();
  },
  async blobText(name) {
    return (await api.blob(name)).text();
  },
};

// Every run reference the UI puts in a URL: the display id, which people read and type.
export const runHref = (run, tab) => `/run/${enc(run.display_id)}${tab ? `/${tab}` : ""}`;
