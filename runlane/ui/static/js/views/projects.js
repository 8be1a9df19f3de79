// Projects as a tree of their paths (cv/resnet50/baseline nests under cv/resnet50 under cv), with the
// runs of each project and of everything below it.
import { api } from "../api.js";
import { html, useState } from "../html.js";
import { useFetch } from "../hooks.js";
import { fmtAgo, fmtNumber } from "../format.js";
import { Empty, ErrorBox, Loading } from "../components/message.js";

export function buildTree(projects) {
  const root = { segment: "", path: "", project: null, children: new Map(), total: 0 };
  for (const project of projects) {
    let node = root;
    const parts = project.name.split("/");
    parts.forEach((segment, i) => {
      const path = parts.slice(0, i + 1).join("/");
      if (!node.children.has(segment)) node.children.set(segment, { segment, path, project: null, children: new Map(), total: 0 });
      node = node.children.get(segment);
      node.total += project.run_count;
    });
    node.project = project;
    root.total += project.run_count;
  }
  return root;
}

const runsHref = (name) => `/runs?project=${encodeURIComponent(name)}`;

function TreeNode({ node, depth, filter }) {
  const kids = [...node.children.values()].sort((a, b) => a.segment.localeCompare(b.segment));
  const visible = !filter || node.path.toLowerCase().includes(filter) || kids.some((k) => k.path.toLowerCase().includes(filter));
  if (!visible && !containsMatch(node, filter)) return null;
  const own = node.project;
  return html`
    <div class="ptree-row" style=${`--depth:${depth}`} data-path=${node.path}>
      <span class="ptree-icon">${kids.length ? "▾" : "•"}</span>
      ${own
        ? html`<span><a class="ptree-name" href=${runsHref(own.name)} title=${own.name}>${node.segment}</a><span class="key">${own.key}</span></span>`
        : html`<span class="ptree-name dir">${node.segment}/</span>`}
      <span class="ptree-count" title="runs in this project${kids.length ? " and below" : ""}">
        ${own && kids.length ? html`<span class="muted">${fmtNumber(own.run_count)} here · </span>` : null}
        <b class="run-count">${fmtNumber(node.total)}</b> ${node.total === 1 ? "run" : "runs"}
      </span>
      <span class="muted ptree-when">${own ? `created ${fmtAgo(own.created_at)}` : ""}</span>
    </div>
    ${kids.map((kid) => html`<${TreeNode} node=${kid} depth=${depth + 1} filter=${filter} />`)}
  `;
}

function containsMatch(node, filter) {
  if (!filter) return true;
  if (node.path.toLowerCase().includes(filter)) return true;
  for (const kid of node.children.values()) if (containsMatch(kid, filter)) return true;
  return false;
}

export function ProjectsView() {
  const { data, error, loading } = useFetch((signal) => api.projects({ signal }), []);
  const [filter, setFilter] = useState("");
  if (error) return html`<${ErrorBox} error=${error} what="the projects" />`;
  if (loading && !data) return html`<${Loading} what="projects" />`;
  const projects = data.items;
  const tree = buildTree(projects);
  return html`<div class="page projects-page">
    <div class="page-head">
      <h1>Projects</h1>
      <span class="muted">${projects.length} ${projects.length === 1 ? "project" : "projects"} · ${fmtNumber(tree.total)} runs</span>
      <div class="grow"></div>
      <input class="input" type="search" placeholder="Filter projects" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      <a class="btn" href="/runs">All runs</a>
    </div>
    ${projects.length === 0
      ? html`<${Empty} title="No projects yet">Log a run with <code>runlane.init(project="my/project")</code> and it appears here.</${Empty}>`
      : html`<div class="card ptree">${[...tree.children.values()]
          .sort((a, b) => a.segment.localeCompare(b.segment))
          .map((node) => html`<${TreeNode} node=${node} depth=${0} filter=${filter.toLowerCase()} />`)}</div>`}
  </div>`;
}
