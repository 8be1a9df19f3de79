// How numbers, times and durations read everywhere in the UI.

export function fmtNumber(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}

export function fmtValue(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") return fmtNumber(value, 6);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) {
    const ms = seconds * 1000;
    return ms !== 0 && Math.abs(ms) < 10 ? `${ms.toFixed(ms < 1 ? 2 : 1)} ms` : `${Math.round(ms)} ms`;
  }
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "—";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(epoch, now = Date.now() / 1000) {
  if (epoch === null || epoch === undefined) return "—";
  const delta = Math.max(0, now - epoch);
  if (delta < 45) return "just now";
  if (delta < 3600) return `${Math.round(delta / 60)} min ago`;
  if (delta < 86400) return `${Math.round(delta / 3600)} h ago`;
  if (delta < 86400 * 30) return `${Math.round(delta / 86400)} d ago`;
  return fmtTime(epoch).slice(0, 10);
}

/** Seconds a run has run: to its end, or to now while it is still going. */
export function runDuration(run, now = Date.now() / 1000) {
  if (run.ended_at !== null && run.ended_at !== undefined) return run.ended_at - run.started_at;
  if (run.status === "running") return now - run.started_at;
  return null;
}

/** Nested objects as dotted leaf paths: {"a": {"b": 1}} -> [["a.b", 1]]. Lists stay leaves. */
export function flatten(obj, prefix = "", out = []) {
  for (const [key, value] of Object.entries(obj || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      flatten(value, path, out);
    } else {
      out.push([path, value]);
    }
  }
  return out;
}

export function getPath(obj, path) {
  let value = obj;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}
