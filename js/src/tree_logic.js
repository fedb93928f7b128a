// Pure functions behind the expression tree editor: no DOM, so they are unit-tested directly.
//
// Trees are the JSON form of gm_lab.expressions.jsonform:
//   {kind: "op", name, type: "L"|"S", args: [...]}, {kind: "stat", name, type: "L"},
//   {kind: "proxy", name, type: "S"}, {kind: "const", value, type: "S"}.
// Trees are never mutated: every edit returns a new tree sharing the untouched subtrees.
// A path is an array of child indices from the root; in the DOM it is written "r", "r.0", "r.1.0".
// The palette is the Python widget's `palette` trait:
//   {L|S: {ops: [{name, arity, args, returns, signatures, symbol, doc}], terminals: [{name, kind}],
//          constant: bool}}.
// Edits only ever replace a subtree by one of the same type, so a valid tree stays valid
// (Python validates every proposal anyway).

// ---- paths ------------------------------------------------------------------------------------
export function pathToString(path) {
  return ["r", ...path].join(".");
}

export function parsePath(text) {
  const parts = String(text).split(".");
  if (parts[0] !== "r") throw new Error(`not a node path: ${text}`);
  return parts.slice(1).map((p) => {
    const i = Number(p);
    if (!Number.isInteger(i) || i < 0) throw new Error(`not a node path: ${text}`);
    return i;
  });
}

export function samePath(a, b) {
  return a != null && b != null && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The subtree at `path`, or undefined when the path leads nowhere. */
export function getAt(tree, path) {
  let node = tree;
  for (const i of path) {
    if (!node || !Array.isArray(node.args) || i >= node.args.length) return undefined;
    node = node.args[i];
  }
  return node;
}

/** A new tree with the subtree at `path` replaced by `sub` (the path must exist). */
export function replaceAt(tree, path, sub) {
  if (path.length === 0) return sub;
  const [head, ...rest] = path;
  if (!tree || !Array.isArray(tree.args) || head >= tree.args.length) {
    throw new Error(`no node at ${pathToString(path)}`);
  }
  const args = tree.args.slice();
  args[head] = replaceAt(tree.args[head], rest, sub);
  return { ...tree, args };
}

/** Every node with its path, in preorder (parents before children, left to right). */
export function walk(tree, path = [], out = []) {
  out.push({ path, node: tree });
  (tree.args || []).forEach((child, i) => walk(child, [...path, i], out));
  return out;
}

export function treeEquals(a, b) {
  if (a === b) return true;
  if (!a || !b || typeof a !== "object" || typeof b !== "object") return false;
  if (a.kind !== b.kind || a.type !== b.type || a.name !== b.name || a.value !== b.value) {
    return false;
  }
  const aa = a.args || [];
  const ba = b.args || [];
  return aa.length === ba.length && aa.every((child, i) => treeEquals(child, ba[i]));
}

// ---- palette ----------------------------------------------------------------------------------
const EMPTY_CHOICES = { ops: [], terminals: [], constant: false };

/** What may replace a node of `type`: ops returning it, terminals of it, and for S a constant. */
export function paletteFor(palette, type) {
  const entry = palette && palette[type];
  if (!entry) return EMPTY_CHOICES;
  return {
    ops: entry.ops || [],
    terminals: entry.terminals || [],
    constant: Boolean(entry.constant),
  };
}

/** Ops that can wrap a node of `type` and keep its type (so the tree stays valid). */
export function wrapOptions(palette, type) {
  return paletteFor(palette, type).ops.filter((op) =>
    signaturesOf(op).some((sig) => sig[0] === type),
  );
}

function signaturesOf(op) {
  return op.signatures && op.signatures.length ? op.signatures : [op.args];
}

/** The leaf a deleted subtree becomes: the constant 1.0 for S, the first statistic for L. */
export function defaultLeaf(type, palette) {
  if (type === "S") return { kind: "const", value: 1.0, type: "S" };
  const stat = paletteFor(palette, "L").terminals[0];
  if (!stat) throw new Error("the palette has no per-layer statistic");
  return { kind: stat.kind || "stat", name: stat.name, type: "L" };
}

export function deleteAt(tree, path, palette) {
  const node = getAt(tree, path);
  return replaceAt(tree, path, defaultLeaf(node.type, palette));
}

function opNode(op, sig, args, palette) {
  const fit = (t, i) => (args[i] && args[i].type === t ? args[i] : defaultLeaf(t, palette));
  const filled = sig.map(fit);
  return { kind: "op", name: op.name, type: op.returns, args: filled };
}

/** Wrap the node at `path` in `op`: it becomes the first argument, the others are defaults
 * (a constant where the op accepts a scalar: `x` becomes `x + 1.0`, not `x + numel_l`). */
export function wrapAt(tree, path, op, palette) {
  const node = getAt(tree, path);
  const fits = signaturesOf(op).filter((sig) => sig[0] === node.type);
  if (!fits.length) throw new Error(`${op.name} cannot take a ${node.type} first argument`);
  const sig = fits.find((s) => s.slice(1).every((t) => t === "S")) || fits[0];
  return replaceAt(tree, path, opNode(op, sig, [node], palette));
}

/** Replace the node at `path` by operator `op` (a palette entry returning the node's type).
 * Keeps what it can: swapping an op for one of the same arity keeps the arguments
 * (`a + b` -> `a * b`); otherwise the old node becomes the first argument when its type fits
 * (`x` -> `log(x)`); otherwise arguments are defaults. */
export function replaceWithOp(tree, path, op, palette) {
  const node = getAt(tree, path);
  const sigs = signaturesOf(op);
  const args = node.args || [];
  const keep = sigs.find((s) => s.length === args.length && s.every((t, i) => args[i].type === t));
  if (node.kind === "op" && keep) return replaceAt(tree, path, opNode(op, keep, args, palette));
  if (sigs.some((s) => s[0] === node.type)) return wrapAt(tree, path, op, palette);
  const best = bestSignature(sigs, args);
  return replaceAt(tree, path, opNode(op, best, args, palette));
}

function bestSignature(sigs, args) {
  const score = (sig) => sig.filter((t, i) => args[i] && args[i].type === t).length;
  return sigs.reduce((best, sig) => (score(sig) > score(best) ? sig : best), sigs[0]);
}

export function replaceWithTerminal(tree, path, terminal) {
  const node = getAt(tree, path);
  const type = terminal.kind === "stat" ? "L" : "S";
  if (type !== node.type) throw new Error(`${terminal.name} is ${type}, the node is ${node.type}`);
  return replaceAt(tree, path, { kind: terminal.kind, name: terminal.name, type });
}

export function replaceWithConstant(tree, path, value) {
  const node = getAt(tree, path);
  if (node.type !== "S") throw new Error("a constant is a scalar (S); this node is per-layer (L)");
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`not a finite number: ${value}`);
  }
  return replaceAt(tree, path, { kind: "const", value, type: "S" });
}

// ---- labels -----------------------------------------------------------------------------------
export function formatConstant(value) {
  if (Number.isInteger(value)) return value.toFixed(1);
  return String(Number(value.toPrecision(6)));
}

/** Symbols of the infix operators (add -> "+"), read from the palette. */
export function symbolsOf(palette) {
  const out = {};
  for (const type of ["L", "S"]) {
    for (const op of paletteFor(palette, type).ops) if (op.symbol) out[op.name] = op.symbol;
  }
  return out;
}

export function nodeLabel(node, symbols = {}) {
  if (node.kind === "const") return formatConstant(node.value);
  if (node.kind === "op") return symbols[node.name] || node.name;
  return node.name;
}

// ---- undo / redo ------------------------------------------------------------------------------
// The history holds accepted trees only: {past: [...], present, future: [...]}, never mutated.
export function createHistory(tree) {
  return { past: [], present: tree, future: [] };
}

export const canUndo = (h) => h.past.length > 0;
export const canRedo = (h) => h.future.length > 0;

export function record(h, tree) {
  if (treeEquals(h.present, tree)) return h;
  const past = h.present == null ? h.past : [...h.past, h.present];
  return { past, present: tree, future: [] };
}

export function undo(h) {
  if (!canUndo(h)) return h;
  const present = h.past[h.past.length - 1];
  return { past: h.past.slice(0, -1), present, future: [h.present, ...h.future] };
}

export function redo(h) {
  if (!canRedo(h)) return h;
  return { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1) };
}

/** The history after Python accepted `tree`: recognised as an undo or a redo when it is the
 * tree one step back or forward (that is what the undo/redo buttons propose), else recorded. */
export function accept(h, tree) {
  if (treeEquals(h.present, tree)) return h;
  if (canUndo(h) && treeEquals(h.past[h.past.length - 1], tree)) return undo(h);
  if (canRedo(h) && treeEquals(h.future[0], tree)) return redo(h);
  return record(h, tree);
}

// ---- layout -----------------------------------------------------------------------------------
/** A layered tidy layout in slot units: leaves on consecutive columns left to right, each parent
 * centred over its first and last child, y = depth. Subtrees occupy disjoint column ranges, so
 * nodes at one depth are at least one column apart and edges never cross.
 * Returns {nodes: [{path, key, node, x, y}], edges: [{from, to}], width, height}. */
export function layoutTree(tree) {
  const nodes = [];
  const edges = [];
  let column = 0;
  let height = 0;
  const place = (node, path) => {
    const key = pathToString(path);
    const entry = { path, key, node, x: 0, y: path.length };
    nodes.push(entry);
    height = Math.max(height, path.length + 1);
    const kids = (node.args || []).map((child, i) => place(child, [...path, i]));
    if (kids.length === 0) entry.x = column++;
    else entry.x = (kids[0].x + kids[kids.length - 1].x) / 2;
    kids.forEach((kid) => edges.push({ from: key, to: kid.key }));
    return entry;
  };
  if (tree) place(tree, []);
  return { nodes, edges, width: column, height };
}
