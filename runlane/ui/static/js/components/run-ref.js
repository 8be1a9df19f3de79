// A link to a run the page only knows by numeric id (a fork's parent): its display id is looked up once
// and cached for the whole session.
import { api, auth } from "../api.js";
import { html, useEffect, useState } from "../html.js";

const cache = new Map();
auth.onChange(() => cache.clear()); // a lookup refused before signing in is worth repeating after

export function rememberRuns(runs) {
  for (const run of runs) if (run) cache.set(run.id, Promise.resolve(run));
}

export function lookupRun(id) {
  if (!cache.has(id)) cache.set(id, api.run(id).catch(() => null));
  return cache.get(id);
}

export function RunRef({ id, suffix }) {
  const [run, setRun] = useState(null);
  useEffect(() => {
    let live = true;
    lookupRun(id).then((found) => live && setRun(found));
    return () => {
      live = false;
    };
  }, [id]);
  const label = run ? run.display_id : `#${id}`;
  return html`<a class="run-ref" href=${`/run/${encodeURIComponent(run ? run.display_id : id)}`} title=${run && run.name ? run.name : ""}>${label}</a>${suffix || ""}`;
}
