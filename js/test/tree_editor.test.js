// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "../src/tree_editor.js";

// A fake anywidget model: traits, change events, and a log of what the view saved.
function fakeModel(state) {
  const traits = { ...state };
  const listeners = {};
  const saved = [];
  return {
    saved,
    get: (name) => traits[name],
    set(name, value) {
      traits[name] = value;
    },
    save_changes() {
      saved.push({ ...traits });
    },
    on: (event, fn) => (listeners[event] ||= new Set()).add(fn),
    off: (event, fn) => listeners[event]?.delete(fn),
    // What Python does: set traits, then fire their change events.
    update(changes) {
      Object.assign(traits, changes);
      for (const name of Object.keys(changes)) listeners[`change:${name}`]?.forEach((fn) => fn());
    },
    listenerCount: () => Object.values(listeners).reduce((n, s) => n + s.size, 0),
  };
}

const PALETTE = {
  L: {
    ops: [
      { name: "log", arity: 1, args: ["L"], returns: "L", signatures: [["L"]], symbol: null },
      {
        name: "add",
        arity: 2,
        args: ["L", "L"],
        returns: "L",
        signatures: [["L", "L"], ["L", "S"], ["S", "L"]],
        symbol: "+",
      },
    ],
    terminals: [
      { name: "snip_l", kind: "stat" },
      { name: "grad_norm_l", kind: "stat" },
    ],
    constant: false,
  },
  S: {
    ops: [
      { name: "log", arity: 1, args: ["S"], returns: "S", signatures: [["S"]], symbol: null },
      { name: "mean", arity: 1, args: ["L"], returns: "S", signatures: [["L"]], symbol: null },
      {
        name: "add",
        arity: 2,
        args: ["S", "S"],
        returns: "S",
        signatures: [["S", "S"]],
        symbol: "+",
      },
    ],
    terminals: [{ name: "naswot", kind: "proxy" }],
    constant: true,
  },
};

// mean(snip_l) + 0.5
const TREE = {
  kind: "op",
  name: "add",
  type: "S",
  args: [
    { kind: "op", name: "mean", type: "S", args: [{ kind: "stat", name: "snip_l", type: "L" }] },
    { kind: "const", value: 0.5, type: "S" },
  ],
};

let el;
let model;
let cleanup;

function mount(extra = {}) {
  model = fakeModel({
    tree: TREE,
    text: "mean(snip_l) + 0.5",
    error: "",
    proposal: {},
    seq: 0,
    palette: PALETTE,
    readonly: false,
    ...extra,
  });
  cleanup = widget.render({ model, el });
}

const q = (selector) => el.querySelector(selector);
const qa = (selector) => [...el.querySelectorAll(selector)];
const click = (node) => node.dispatchEvent(new MouseEvent("click", { bubbles: true }));
const node = (path) => q(`.gm-node[data-path="${path}"]`);
const items = () => qa(".gm-palette .gm-palette-item").map((b) => b.dataset.name);

beforeEach(() => {
  el = document.createElement("div");
  document.body.append(el);
});

afterEach(() => {
  cleanup?.();
  el.remove();
});

describe("drawing", () => {
  it("draws every node with its path, kind and type classes, and the edges", () => {
    mount();
    expect(q(".gm-tree-editor svg")).not.toBeNull();
    expect(qa(".gm-node").map((g) => g.getAttribute("data-path"))).toEqual([
      "r",
      "r.0",
      "r.0.0",
      "r.1",
    ]);
    expect(node("r").getAttribute("class")).toBe("gm-node gm-kind-op gm-type-S");
    expect(node("r.0.0").classList.contains("gm-kind-stat")).toBe(true);
    expect(node("r.0.0").classList.contains("gm-type-L")).toBe(true);
    expect(node("r.1").classList.contains("gm-kind-const")).toBe(true);
    expect(node("r").textContent).toContain("+");
    expect(node("r.1").querySelector("text").textContent).toBe("0.5");
    expect(qa("line.gm-edge")).toHaveLength(3);
    expect(q(".gm-tree-text").value).toBe("mean(snip_l) + 0.5");
  });

  it("redraws when Python sets a new tree and text", () => {
    mount();
    const leaf = { kind: "proxy", name: "naswot", type: "S" };
    model.update({ tree: leaf, text: "naswot" });
    expect(qa(".gm-node")).toHaveLength(1);
    expect(node("r").classList.contains("gm-kind-proxy")).toBe(true);
    expect(q(".gm-tree-text").value).toBe("naswot");
  });
});

describe("selection and palette", () => {
  it("shows the palette of the selected node's type", () => {
    mount();
    expect(q(".gm-palette").hidden).toBe(true);
    click(node("r.0.0"));
    expect(node("r.0.0").classList.contains("gm-selected")).toBe(true);
    expect(q(".gm-palette").hidden).toBe(false);
    expect(items()).toEqual(["log", "add", "snip_l", "grad_norm_l"]);
    expect(q(".gm-const-input")).toBeNull();
    click(node("r.1"));
    expect(node("r.0.0").classList.contains("gm-selected")).toBe(false);
    expect(items()).toEqual(["log", "mean", "add", "naswot", "constant"]);
    expect(q(".gm-const-input").value).toBe("0.5");
  });

  it("proposes the replaced tree when a palette item is clicked", () => {
    mount();
    click(node("r.0.0"));
    click(q('.gm-palette-item[data-name="grad_norm_l"]'));
    const { proposal } = model.saved.at(-1);
    expect(proposal.seq).toBe(1);
    expect(proposal.tree.args[0].args[0]).toEqual({ kind: "stat", name: "grad_norm_l", type: "L" });
    expect(proposal.tree.args[1]).toBe(TREE.args[1]);
    // Pending: the proposal is drawn dimmed until Python answers.
    expect(q("svg").classList.contains("gm-pending")).toBe(true);
    expect(node("r.0.0").textContent).toContain("grad_norm_l");
    model.update({ tree: proposal.tree, text: "mean(grad_norm_l) + 0.5", seq: 1 });
    expect(q("svg").classList.contains("gm-pending")).toBe(false);
    expect(q(".gm-undo").disabled).toBe(false);
  });

  it("proposes a typed constant, and refuses non-numbers locally", () => {
    mount();
    click(node("r.1"));
    const input = q(".gm-const-input");
    input.value = "abc";
    click(q(".gm-const-apply"));
    expect(model.saved).toHaveLength(0);
    expect(q(".gm-tree-status").textContent).toMatch(/not a number/);
    input.value = "-2.25";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    const sent = model.saved.at(-1).proposal.tree;
    expect(sent.args[1]).toEqual({ kind: "const", value: -2.25, type: "S" });
  });
});

describe("toolbar", () => {
  it("deletes and wraps the selected subtree", () => {
    mount();
    expect(q(".gm-delete").disabled).toBe(true);
    click(node("r.0"));
    click(q(".gm-delete"));
    const deleted = model.saved.at(-1).proposal.tree;
    expect(deleted.args[0]).toEqual({ kind: "const", value: 1, type: "S" });
    const options = qa(".gm-wrap-op option").map((o) => o.dataset.name);
    expect(options).toEqual(["log", "add"]);
    q(".gm-wrap-op").value = "0";
    click(q(".gm-wrap"));
    expect(model.saved.at(-1).proposal.tree.args[0]).toEqual({
      kind: "op",
      name: "log",
      type: "S",
      args: [TREE.args[0]],
    });
  });

  it("undo proposes the previous accepted tree and redo the next", () => {
    mount();
    expect(q(".gm-undo").disabled).toBe(true);
    const next = { kind: "proxy", name: "naswot", type: "S" };
    model.update({ tree: next, text: "naswot" });
    click(q(".gm-undo"));
    expect(model.saved.at(-1).proposal.tree).toEqual(TREE);
    model.update({ tree: structuredClone(TREE), seq: 1 });
    expect(q(".gm-redo").disabled).toBe(false);
    click(q(".gm-redo"));
    expect(model.saved.at(-1).proposal).toEqual({ tree: next, seq: 2 });
  });

  it("sends typed text to Python on Enter and on Apply", () => {
    mount();
    const input = q(".gm-tree-text");
    input.value = "log(naswot)";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.saved.at(-1).proposal).toEqual({ text: "log(naswot)", seq: 1 });
    input.value = "naswot";
    click(q(".gm-apply-text"));
    expect(model.saved.at(-1).proposal).toEqual({ text: "naswot", seq: 2 });
  });
});

describe("errors, readonly, cleanup", () => {
  it("shows the model's error and hides the area when there is none", () => {
    mount();
    expect(q(".gm-tree-error").hidden).toBe(true);
    model.update({ error: "unknown name 'snp_l' (column 6)", seq: 1 });
    expect(q(".gm-tree-error").hidden).toBe(false);
    expect(q(".gm-tree-error").textContent).toContain("unknown name 'snp_l'");
    model.update({ error: "" });
    expect(q(".gm-tree-error").hidden).toBe(true);
  });

  it("keeps drawing but offers no editing when readonly", () => {
    mount({ readonly: true });
    expect(qa(".gm-node")).toHaveLength(4);
    click(node("r.0.0"));
    expect(q(".gm-palette").hidden).toBe(true);
    expect(qa(".gm-palette-item")).toHaveLength(0);
    expect(q(".gm-toolbar").hidden).toBe(true);
    expect(q(".gm-tree-text").readOnly).toBe(true);
    q(".gm-tree-text").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.saved).toHaveLength(0);
    model.update({ readonly: false });
    expect(q(".gm-palette").hidden).toBe(false);
  });

  it("removes its listeners and DOM on cleanup", () => {
    mount();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    cleanup = null;
    expect(model.listenerCount()).toBe(0);
    expect(q(".gm-tree-editor")).toBeNull();
  });
});
