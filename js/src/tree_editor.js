// The expression tree view/editor (anywidget front end of gm_lab.widgets.tree_editor).
//
// Python owns the truth: edits here are only *proposed* (trait `proposal` = {tree|text, seq});
// Python validates them and sets `tree`, `text`, `error` and `seq` (the last proposal handled).
// Until then the proposed tree is drawn dimmed. Undo/redo history (accepted trees) lives here.
import {
  accept,
  canRedo,
  canUndo,
  createHistory,
  deleteAt,
  getAt,
  layoutTree,
  nodeLabel,
  parsePath,
  pathToString,
  paletteFor,
  replaceWithConstant,
  replaceWithOp,
  replaceWithTerminal,
  symbolsOf,
  wrapAt,
  wrapOptions,
} from "./tree_logic.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SLOT_GAP = 14; // px between the widest nodes of neighbouring columns
const LEVEL_HEIGHT = 58; // px between depths
const NODE_HEIGHT = 26;
const CHAR_WIDTH = 7.2; // px per label character (monospace 12px)
const TYPE_WORDS = { L: "per-layer (L)", S: "scalar (S)" };

const CSS = `
.gm-tree-editor { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; }
.gm-tree-editor .gm-toolbar, .gm-tree-editor .gm-text-row { display: flex; gap: 6px;
  align-items: center; flex-wrap: wrap; margin: 4px 0; }
.gm-tree-editor .gm-tree-canvas { overflow: auto; max-height: 480px; border: 1px solid #ddd;
  border-radius: 4px; background: #fff; }
.gm-tree-editor svg.gm-pending { opacity: 0.45; }
.gm-tree-editor .gm-node { cursor: pointer; }
.gm-tree-editor.gm-readonly .gm-node { cursor: default; }
.gm-tree-editor .gm-node text { font: 12px monospace; text-anchor: middle;
  dominant-baseline: central; pointer-events: none; fill: #222; }
.gm-tree-editor .gm-node .gm-shape { stroke-width: 1.5; }
.gm-tree-editor .gm-kind-op .gm-shape { fill: #fff4d6; }
.gm-tree-editor .gm-kind-op.gm-type-L .gm-shape { stroke: #2e8b3e; }
.gm-tree-editor .gm-kind-op.gm-type-S .gm-shape { stroke: #2f6db5; }
.gm-tree-editor .gm-kind-stat .gm-shape { fill: #d7f0da; stroke: #2e8b3e; }
.gm-tree-editor .gm-kind-proxy .gm-shape { fill: #dbe8f8; stroke: #2f6db5; }
.gm-tree-editor .gm-kind-const .gm-shape { fill: #ececec; stroke: #888; }
.gm-tree-editor .gm-selected .gm-shape { stroke: #d9480f; stroke-width: 3; }
.gm-tree-editor .gm-edge { stroke: #999; stroke-width: 1.2; }
.gm-tree-editor .gm-palette { border: 1px solid #ddd; border-radius: 4px; padding: 4px 6px;
  margin: 4px 0; }
.gm-tree-editor .gm-palette-group { display: flex; flex-wrap: wrap; gap: 3px; margin: 3px 0; }
.gm-tree-editor .gm-palette-item { font: 12px monospace; }
.gm-tree-editor .gm-palette-item[data-kind="stat"] { background: #d7f0da; }
.gm-tree-editor .gm-palette-item[data-kind="proxy"] { background: #dbe8f8; }
.gm-tree-editor .gm-tree-text { flex: 1; min-width: 240px; font: 12px monospace; }
.gm-tree-editor .gm-tree-error { color: #b00020; white-space: pre; font: 12px monospace;
  overflow-x: auto; }
.gm-tree-editor .gm-tree-status { color: #666; }
`;

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  children.forEach((c) => node.append(c));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function nodeWidth(label) {
  return Math.max(30, label.length * CHAR_WIDTH + 16);
}

/** The shape of a node: rounded rect for ops, rect for statistics, ellipses for proxies and
 * (smaller, grey) constants. */
function shapeFor(kind, width) {
  const half = width / 2;
  if (kind === "proxy" || kind === "const") {
    return svg("ellipse", { class: "gm-shape", cx: 0, cy: 0, rx: half, ry: NODE_HEIGHT / 2 });
  }
  const rx = kind === "op" ? 10 : 2;
  return svg("rect", {
    class: "gm-shape",
    x: -half,
    y: -NODE_HEIGHT / 2,
    width,
    height: NODE_HEIGHT,
    rx,
  });
}

function opLabel(op) {
  return `${op.name}(${op.args.join(",")})`;
}

function opTitle(op) {
  const sigs = (op.signatures || [op.args]).map((s) => `${op.name}(${s.join(", ")})`);
  return `${sigs.join(" | ")} -> ${op.returns}${op.doc ? `: ${op.doc}` : ""}`;
}

export default {
  render({ model, el }) {
    const view = createView(model, el);
    return view.destroy;
  },
};

/** One view of the model; exported separately so tests can drive it. */
export function createView(model, el) {
  const state = {
    selected: null, // path (array) of the selected node
    pending: null, // {tree|null, seq} of the proposal Python has not answered yet
    history: createHistory(model.get("tree")),
    note: "", // a local status message (e.g. an unparsable constant)
  };

  const dom = buildDom(el);
  wireDom(dom);

  function readonly() {
    return Boolean(model.get("readonly"));
  }

  function shownTree() {
    return state.pending && state.pending.tree ? state.pending.tree : model.get("tree");
  }

  function propose(content) {
    const seq = Math.max(state.pending ? state.pending.seq : 0, Number(model.get("seq")) || 0) + 1;
    model.set("proposal", { ...content, seq });
    model.save_changes();
    state.pending = { tree: content.tree || null, seq };
    state.note = "";
    render();
  }

  function proposeEdit(edit) {
    if (readonly() || state.selected == null) return;
    const tree = model.get("tree");
    try {
      propose({ tree: edit(tree, state.selected) });
    } catch (err) {
      state.note = String(err.message || err);
      render();
    }
  }

  // ---- building -------------------------------------------------------------------------
  function buildDom(root) {
    const style = h("style", { text: CSS });
    const button = (cls, title, text) => h("button", { class: cls, type: "button", title, text });
    const undoBtn = button("gm-undo", "Undo", "↶ Undo");
    const redoBtn = button("gm-redo", "Redo", "↷ Redo");
    const deleteBtn = button("gm-delete", "Replace the selected subtree by a leaf", "Delete");
    const wrapSelect = h("select", { class: "gm-wrap-op", title: "Operator to wrap with" });
    const wrapBtn = button("gm-wrap", "Wrap the selected subtree in the operator", "Wrap in");
    const toolbar = h("div", { class: "gm-toolbar" }, [
      undoBtn,
      redoBtn,
      deleteBtn,
      wrapBtn,
      wrapSelect,
    ]);
    const canvas = h("div", { class: "gm-tree-canvas" });
    const palette = h("div", { class: "gm-palette" });
    const text = h("input", {
      class: "gm-tree-text",
      type: "text",
      spellcheck: "false",
      "aria-label": "Expression text",
    });
    const applyBtn = button("gm-apply-text", "Check and apply the text", "Apply");
    const status = h("span", { class: "gm-tree-status" });
    const textRow = h("div", { class: "gm-text-row" }, [text, applyBtn, status]);
    const error = h("div", { class: "gm-tree-error", role: "alert" });
    const container = h("div", { class: "gm-tree-editor" }, [
      style,
      toolbar,
      canvas,
      palette,
      textRow,
      error,
    ]);
    root.append(container);
    return {
      container,
      toolbar,
      undoBtn,
      redoBtn,
      deleteBtn,
      wrapSelect,
      wrapBtn,
      canvas,
      palette,
      text,
      applyBtn,
      status,
      error,
    };
  }

  function wireDom(d) {
    d.undoBtn.addEventListener("click", () => {
      const h0 = state.history;
      if (!readonly() && canUndo(h0)) propose({ tree: h0.past[h0.past.length - 1] });
    });
    d.redoBtn.addEventListener("click", () => {
      const h0 = state.history;
      if (!readonly() && canRedo(h0)) propose({ tree: h0.future[0] });
    });
    d.deleteBtn.addEventListener("click", () =>
      proposeEdit((tree, path) => deleteAt(tree, path, model.get("palette"))),
    );
    d.wrapBtn.addEventListener("click", () => {
      const node = state.selected && getAt(model.get("tree"), state.selected);
      if (!node) return;
      const op = wrapOptions(model.get("palette"), node.type)[Number(d.wrapSelect.value)];
      if (op) proposeEdit((tree, path) => wrapAt(tree, path, op, model.get("palette")));
    });
    const applyText = () => {
      if (!readonly()) propose({ text: d.text.value });
    };
    d.applyBtn.addEventListener("click", applyText);
    d.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        applyText();
      }
    });
  }

  // ---- rendering ------------------------------------------------------------------------
  function render() {
    const tree = model.get("tree");
    if (state.selected && !getAt(tree, state.selected)) state.selected = null;
    dom.container.classList.toggle("gm-readonly", readonly());
    renderTree();
    renderToolbar();
    renderPalette();
    renderText();
    renderError();
    renderStatus();
  }

  function renderTree() {
    const tree = shownTree();
    const symbols = symbolsOf(model.get("palette"));
    const layout = layoutTree(tree);
    const labels = new Map(layout.nodes.map((n) => [n.key, nodeLabel(n.node, symbols)]));
    const widest = Math.max(30, ...[...labels.values()].map(nodeWidth));
    const slot = widest + SLOT_GAP;
    const pos = (n) => ({ x: (n.x + 0.5) * slot, y: n.y * LEVEL_HEIGHT + NODE_HEIGHT / 2 + 6 });
    const byKey = new Map(layout.nodes.map((n) => [n.key, n]));
    const width = Math.max(1, layout.width) * slot;
    const height = Math.max(1, layout.height) * LEVEL_HEIGHT;
    const root = svg("svg", {
      class: "gm-tree-svg",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
    });
    root.classList.toggle("gm-pending", Boolean(state.pending && state.pending.tree));
    for (const edge of layout.edges) {
      const a = pos(byKey.get(edge.from));
      const b = pos(byKey.get(edge.to));
      const line = svg("line", { class: "gm-edge", x1: a.x, y1: a.y, x2: b.x, y2: b.y });
      line.setAttribute("data-from", edge.from);
      line.setAttribute("data-to", edge.to);
      root.append(line);
    }
    for (const n of layout.nodes) root.append(drawNode(n, labels.get(n.key), pos(n)));
    dom.canvas.replaceChildren(root);
  }

  function drawNode(n, label, p) {
    const { node } = n;
    const g = svg("g", {
      class: `gm-node gm-kind-${node.kind} gm-type-${node.type}`,
      "data-path": n.key,
      transform: `translate(${p.x},${p.y})`,
    });
    if (state.selected && pathToString(state.selected) === n.key) g.classList.add("gm-selected");
    const title = svg("title");
    title.textContent = `${label}: ${node.kind}, ${TYPE_WORDS[node.type] || node.type}`;
    const text = svg("text", { x: 0, y: 0 });
    text.textContent = label;
    g.append(title, shapeFor(node.kind, nodeWidth(label)), text);
    g.addEventListener("click", (event) => {
      event.stopPropagation();
      select(n.key);
    });
    return g;
  }

  function select(key) {
    const path = parsePath(key);
    const same = state.selected && pathToString(state.selected) === key;
    state.selected = same ? null : path;
    state.note = "";
    render();
  }

  function renderToolbar() {
    const ro = readonly();
    dom.toolbar.hidden = ro;
    const node = state.selected && getAt(model.get("tree"), state.selected);
    dom.undoBtn.disabled = ro || !canUndo(state.history);
    dom.redoBtn.disabled = ro || !canRedo(state.history);
    dom.deleteBtn.disabled = ro || !node;
    const options = node ? wrapOptions(model.get("palette"), node.type) : [];
    const previous = dom.wrapSelect.value;
    dom.wrapSelect.replaceChildren(
      ...options.map((op, i) =>
        h("option", {
          value: String(i),
          "data-name": op.name,
          title: opTitle(op),
          text: opLabel(op),
        }),
      ),
    );
    if (previous && Number(previous) < options.length) dom.wrapSelect.value = previous;
    dom.wrapSelect.disabled = ro || !node;
    dom.wrapBtn.disabled = ro || !node || options.length === 0;
  }

  function renderPalette() {
    const node = state.selected && getAt(model.get("tree"), state.selected);
    dom.palette.replaceChildren();
    dom.palette.hidden = readonly() || !node;
    if (dom.palette.hidden) return;
    const palette = model.get("palette");
    const choices = paletteFor(palette, node.type);
    const label = nodeLabel(node, symbolsOf(palette));
    const heading = `Replace ${label} — ${TYPE_WORDS[node.type]} — with:`;
    dom.palette.append(h("div", { class: "gm-palette-title", text: heading }));
    dom.palette.append(opButtons(choices.ops, palette), terminalButtons(choices.terminals));
    if (choices.constant) dom.palette.append(constantEditor(node));
  }

  function opButtons(ops, palette) {
    const group = h("div", { class: "gm-palette-group gm-palette-ops" });
    for (const op of ops) {
      const button = h("button", {
        class: "gm-palette-item gm-palette-op",
        type: "button",
        "data-name": op.name,
        "data-arity": String(op.arity),
        "data-kind": "op",
        title: opTitle(op),
        text: opLabel(op),
      });
      button.addEventListener("click", () =>
        proposeEdit((tree, path) => replaceWithOp(tree, path, op, palette)),
      );
      group.append(button);
    }
    return group;
  }

  function terminalButtons(terminals) {
    const group = h("div", { class: "gm-palette-group gm-palette-terminals" });
    for (const terminal of terminals) {
      const button = h("button", {
        class: "gm-palette-item gm-palette-terminal",
        type: "button",
        "data-name": terminal.name,
        "data-kind": terminal.kind,
        title: `${terminal.kind === "stat" ? "statistic" : "proxy"} ${terminal.name}`,
        text: terminal.name,
      });
      button.addEventListener("click", () =>
        proposeEdit((tree, path) => replaceWithTerminal(tree, path, terminal)),
      );
      group.append(button);
    }
    return group;
  }

  function constantEditor(node) {
    const input = h("input", {
      class: "gm-const-input",
      type: "text",
      inputmode: "decimal",
      placeholder: "constant",
      "aria-label": "Constant value",
    });
    if (node.kind === "const") input.value = String(node.value);
    const apply = () => {
      const text = input.value.trim();
      const value = text === "" ? Number.NaN : Number(text);
      if (!Number.isFinite(value)) {
        state.note = `not a number: ${JSON.stringify(input.value)}`;
        renderStatus();
        return;
      }
      proposeEdit((tree, path) => replaceWithConstant(tree, path, value));
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        apply();
      }
    });
    const button = h("button", {
      class: "gm-palette-item gm-const-apply",
      type: "button",
      "data-name": "constant",
      "data-kind": "const",
      text: "set constant",
    });
    button.addEventListener("click", apply);
    return h("div", { class: "gm-palette-group gm-palette-const" }, [input, button]);
  }

  function renderText() {
    dom.text.readOnly = readonly();
    dom.applyBtn.hidden = readonly();
  }

  function syncText() {
    dom.text.value = model.get("text") || "";
  }

  function renderError() {
    const message = model.get("error") || "";
    dom.error.textContent = message;
    dom.error.hidden = message === "";
  }

  function renderStatus() {
    let message = state.note;
    if (!message && state.pending) message = "checking…";
    if (!message && readonly()) message = "read-only";
    if (!message && state.selected) {
      const node = getAt(model.get("tree"), state.selected);
      if (node) message = `selected ${node.kind} (${node.type})`;
    }
    dom.status.textContent = message;
  }

  // ---- model events ---------------------------------------------------------------------
  const onTree = () => {
    state.history = accept(state.history, model.get("tree"));
    render();
  };
  const onSeq = () => {
    if (state.pending && (Number(model.get("seq")) || 0) >= state.pending.seq) state.pending = null;
    render();
  };
  const onText = () => syncText();
  const handlers = [
    ["change:tree", onTree],
    ["change:seq", onSeq],
    ["change:text", onText],
    ["change:error", render],
    ["change:palette", render],
    ["change:readonly", render],
  ];
  handlers.forEach(([event, fn]) => model.on(event, fn));
  syncText();
  render();

  return {
    state,
    dom,
    render,
    destroy() {
      handlers.forEach(([event, fn]) => model.off(event, fn));
      dom.container.remove();
    },
  };
}
