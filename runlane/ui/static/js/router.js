// Client-side routes on the History API: every view has a real URL (the server answers index.html for
// any path that is not a file or /api), links are plain <a href>, and back/forward re-render.
import { useEffect, useState } from "./html.js";

const listeners = new Set();

function current() {
  return { path: decodeURI(location.pathname), query: new URLSearchParams(location.search), href: location.href };
}

export function navigate(url, { replace = false } = {}) {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((fn) => fn(current()));
}

/** The URL with some query parameters changed (null or "" removes one; arrays repeat it). */
export function withQuery(changes, base = location.pathname + location.search) {
  const [path, search = ""] = base.split("?");
  const params = new URLSearchParams(search);
  for (const [key, value] of Object.entries(changes)) {
    params.delete(key);
    if (Array.isArray(value)) value.forEach((item) => params.append(key, item));
    else if (value !== null && value !== undefined && value !== "" && value !== false) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function useLocation() {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const update = (next) => setLoc(next);
    const onPop = () => update(current());
    listeners.add(update);
    window.addEventListener("popstate", onPop);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", onPop);
    };
  }, []);
  return loc;
}

// Plain links navigate in place; modified clicks (new tab), downloads and API links keep the browser's way.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const link = event.target.closest && event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  window.scrollTo(0, 0);
});

/** Match a path against patterns like "/run/:ref/:tab?"; returns the params or null. */
export function match(pattern, path) {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  const params = {};
  for (let i = 0; i < want.length; i += 1) {
    const part = want[i];
    if (part === "*") {
      params.rest = got.slice(i).join("/");
      return params;
    }
    const optional = part.endsWith("?");
    const name = part.replace(/\?$/, "");
    if (i >= got.length) {
      if (optional) continue;
      return null;
    }
    if (name.startsWith(":")) params[name.slice(1)] = got[i];
    else if (name !== got[i]) return null;
  }
  return got.length <= want.length ? params : null;
}
