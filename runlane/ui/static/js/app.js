// The shell: top bar, breadcrumbs and the route table. Each view reads its state from the URL.
import { auth, onUnauthorized } from "./api.js";
import { html, render, useEffect, useState } from "./html.js";
import { KeyForm } from "./components/key-form.js";
import { match, useLocation } from "./router.js";
import { ProjectsView } from "./views/projects.js";
import { RunsView } from "./views/runs.js";
import { RunView } from "./views/run.js";
import { CompareView } from "./views/compare.js";
import { LineageView } from "./views/lineage.js";
import { Empty } from "./components/message.js";

const ROUTES = [
  ["/", ProjectsView, "Projects"],
  ["/runs", RunsView, "Runs"],
  ["/run/:ref/:tab?", RunView, "Run"],
  ["/compare", CompareView, "Compare"],
  ["/lineage/:ref", LineageView, "Lineage"],
];

function NotFound({ path }) {
  return html`<${Empty} title="No such page">Nothing lives at <code>${path}</code>. <a href="/">Go to the projects</a>.</${Empty}>`;
}

function Crumbs({ loc }) {
  const project = loc.query.get("project");
  const parts = [html`<a href="/">Projects</a>`];
  if (loc.path === "/runs") parts.push(project ? html`<span>${project}</span>` : html`<span>All runs</span>`);
  const run = match("/run/:ref/:tab?", loc.path);
  if (run) parts.push(html`<span class="mono">${decodeURIComponent(run.ref)}</span>`);
  if (loc.path === "/compare") parts.push(html`<span>Compare</span>`);
  const lineage = match("/lineage/:ref", loc.path);
  if (lineage) parts.push(html`<span>Lineage of ${decodeURIComponent(lineage.ref)}</span>`);
  return html`<nav class="crumbs">${parts.map((p, i) => html`${i ? html`<span class="sep">/</span>` : null}${p}`)}</nav>`;
}

function useAuth() {
  // A 401 anywhere swaps the view for the key form; a key entered re-renders every view from scratch.
  const [needKey, setNeedKey] = useState(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => onUnauthorized((message) => setNeedKey(message)), []);
  useEffect(
    () =>
      auth.onChange(() => {
        setNeedKey(null);
        setGeneration((g) => g + 1);
      }),
    [],
  );
  return { needKey, generation };
}

function App() {
  const loc = useLocation();
  const { needKey, generation } = useAuth();
  let view = html`<${NotFound} path=${loc.path} />`;
  let viewKey = "404";
  for (const [pattern, View, title] of ROUTES) {
    const params = match(pattern, loc.path);
    if (params) {
      view = html`<${View} params=${params} query=${loc.query} />`;
      viewKey = pattern + (params.ref || "");
      if (!params.ref) document.title = `${title} · runlane`;
      break;
    }
  }
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href="/"><img src="/favicon.svg" alt="" width="22" height="22" /> runlane</a>
      <${Crumbs} loc=${loc} />
      <div class="grow"></div>
      <a class="top-link" href="/runs">All runs</a>
      ${auth.key() ? html`<button class="btn-link top-link" onClick=${() => auth.set(null)}>Sign out</button>` : null}
    </header>
    <main key=${`${viewKey}#${generation}`}>${needKey !== null ? html`<${KeyForm} message=${needKey} />` : view}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
