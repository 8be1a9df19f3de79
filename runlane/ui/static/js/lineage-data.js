// A fork tree from the lineage route: the run's chain comes in one answer; the whole tree (for the
// lineage view) is walked breadth-first from the root, one lineage call per run that has forks.
import { api } from "./api.js";

const MAX_TREE = 500;

/** The run page's view of the tree: its ancestors as a chain down to it, then its direct forks. */
export function chainTree(lineage) {
  const chain = [...lineage.ancestors, lineage.run];
  const childrenOf = new Map();
  for (let i = 0; i < chain.length - 1; i += 1) childrenOf.set(chain[i].id, [chain[i + 1]]);
  childrenOf.set(lineage.run.id, lineage.children);
  return { root: chain[0], childrenOf, runs: [...chain, ...lineage.children] };
}

export async function wholeTree(ref, signal) {
  const first = await api.lineage(ref, { signal });
  const root = first.root;
  const childrenOf = new Map();
  const runs = [root];
  const queue = [root];
  while (queue.length && runs.length < MAX_TREE) {
    const run = queue.shift();
    const lineage = run.id === first.run.id ? first : await api.lineage(run.id, { signal });
    const kids = [...lineage.children].sort((a, b) => (a.fork_step ?? 0) - (b.fork_step ?? 0) || a.id - b.id);
    childrenOf.set(run.id, kids);
    for (const kid of kids) {
      runs.push(kid);
      queue.push(kid);
    }
  }
  return { root, run: first.run, childrenOf, runs, truncated: queue.length > 0 };
}

/** Fork steps of a run's chain: where its stitched series switches from one run to the next. */
export function chainForks(lineage) {
  const chain = [...lineage.ancestors, lineage.run];
  const out = [];
  for (let i = 1; i < chain.length; i += 1) {
    const run = chain[i];
    if (run.fork_step !== null && run.fork_step !== undefined) {
      out.push({ step: run.fork_step, from: chain[i - 1], to: run });
    }
  }
  return out;
}
