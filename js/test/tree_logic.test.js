import { describe, expect, it } from "vitest";
import {
  accept,
  canRedo,
  canUndo,
  createHistory,
  defaultLeaf,
  deleteAt,
  formatConstant,
  getAt,
  layoutTree,
  nodeLabel,
  paletteFor,
  parsePath,
  pathToString,
  record,
  redo,
  replaceAt,
  replaceWithConstant,
  replaceWithOp,
  replaceWithTerminal,
  symbolsOf,
  treeEquals,
  undo,
  walk,
  wrapAt,
  wrapOptions,
} from "../src/tree_logic.js";

// A small palette in the shape of the Python widget's `palette` trait.
const BIN_L = [["L", "L"], ["L", "S"], ["S", "L"]];
const op = (name, returns, signatures, symbol = null) => ({
  name,
  arity: signatures[0].length,
  args: signatures[0],
  returns,
  signatures,
  symbol,
  doc: name,
});
const PALETTE = {
  L: {
    ops: [op("log", "L", [["L"]]), op("standardise", "L", [["L"]]), op("add", "L", BIN_L, "+")],
    terminals: [
      { name: "snip_l", kind: "stat" },
      { name: "grad_norm_l", kind: "stat" },
    ],
    constant: false,
  },
  S: {
    ops: [
      op("log", "S", [["S"]]),
      op("add", "S", [["S", "S"]], "+"),
      op("mul", "S", [["S", "S"]], "*"),
      op("mean", "S", [["L"]]),
      op("max", "S", [["L"]]),
    ],
    terminals: [{ name: "naswot", kind: "proxy" }],
    constant: true,
  },
};
const find = (type, name, arity = null) =>
  PALETTE[type].ops.find((o) => o.name === name && (arity == null || o.arity === arity));

const stat = (name) => ({ kind: "stat", name, type: "L" });
const proxy = (name) => ({ kind: "proxy", name, type: "S" });
const konst = (value) => ({ kind: "const", value, type: "S" });
const app = (name, type, ...args) => ({ kind: "op", name, type, args });

// mean(log(snip_l)) + 0.5 * naswot
const TREE = app(
  "add",
  "S",
  app("mean", "S", app("log", "L", stat("snip_l"))),
  app("mul", "S", konst(0.5), proxy("naswot")),
);

describe("paths", () => {
  it("round-trips between arrays and the DOM form", () => {
    expect(pathToString([])).toBe("r");
    expect(pathToString([1, 0])).toBe("r.1.0");
    expect(parsePath("r")).toEqual([]);
    expect(parsePath("r.1.0")).toEqual([1, 0]);
    expect(() => parsePath("x.1")).toThrow();
    expect(() => parsePath("r.-1")).toThrow();
  });

  it("gets subtrees and undefined for paths that lead nowhere", () => {
    expect(getAt(TREE, [])).toBe(TREE);
    expect(getAt(TREE, [0, 0, 0])).toEqual(stat("snip_l"));
    expect(getAt(TREE, [1, 1])).toEqual(proxy("naswot"));
    expect(getAt(TREE, [1, 2])).toBeUndefined();
    expect(getAt(TREE, [1, 1, 0])).toBeUndefined();
  });

  it("walks every node in preorder", () => {
    const keys = walk(TREE).map((e) => pathToString(e.path));
    expect(keys).toEqual(["r", "r.0", "r.0.0", "r.0.0.0", "r.1", "r.1.0", "r.1.1"]);
  });
});

describe("replace and delete", () => {
  it("replaces without mutating and shares untouched subtrees", () => {
    const before = JSON.stringify(TREE);
    const out = replaceAt(TREE, [1, 0], konst(2));
    expect(JSON.stringify(TREE)).toBe(before);
    expect(getAt(out, [1, 0])).toEqual(konst(2));
    expect(out.args[0]).toBe(TREE.args[0]);
    expect(replaceAt(TREE, [], proxy("naswot"))).toEqual(proxy("naswot"));
    expect(() => replaceAt(TREE, [1, 5], konst(1))).toThrow();
  });

  it("deletes a subtree to a default leaf of its type", () => {
    expect(defaultLeaf("S", PALETTE)).toEqual(konst(1));
    expect(defaultLeaf("L", PALETTE)).toEqual(stat("snip_l"));
    const noL = deleteAt(TREE, [0, 0], PALETTE);
    expect(getAt(noL, [0])).toEqual(app("mean", "S", stat("snip_l")));
    const noMul = deleteAt(TREE, [1], PALETTE);
    expect(getAt(noMul, [1])).toEqual(konst(1));
    expect(deleteAt(TREE, [], PALETTE)).toEqual(konst(1));
  });

  it("replaces by terminals and constants of the node's type only", () => {
    const t = replaceWithTerminal(TREE, [0, 0, 0], { name: "grad_norm_l", kind: "stat" });
    expect(getAt(t, [0, 0, 0])).toEqual(stat("grad_norm_l"));
    expect(() => replaceWithTerminal(TREE, [0, 0, 0], { name: "naswot", kind: "proxy" })).toThrow();
    expect(getAt(replaceWithConstant(TREE, [1, 1], -3.5), [1, 1])).toEqual(konst(-3.5));
    expect(() => replaceWithConstant(TREE, [0, 0], 1)).toThrow(/per-layer/);
    expect(() => replaceWithConstant(TREE, [1, 1], Number.NaN)).toThrow();
  });
});

describe("replace by an operator", () => {
  it("swaps operators of the same arity and keeps the arguments", () => {
    const out = replaceWithOp(TREE, [], find("S", "mul"), PALETTE);
    expect(out).toEqual({ ...TREE, name: "mul" });
    const sum = replaceWithOp(TREE, [0], find("S", "max", 1), PALETTE);
    expect(getAt(sum, [0])).toEqual(app("max", "S", TREE.args[0].args[0]));
  });

  it("wraps a leaf when the operator takes its type first", () => {
    const out = replaceWithOp(TREE, [0, 0, 0], find("L", "log"), PALETTE);
    expect(getAt(out, [0, 0, 0])).toEqual(app("log", "L", stat("snip_l")));
    const sq = replaceWithOp(TREE, [0], find("S", "log"), PALETTE);
    expect(getAt(sq, [0])).toEqual(app("log", "S", TREE.args[0]));
  });

  it("fills defaults when nothing fits", () => {
    const out = replaceWithOp(TREE, [1, 1], find("S", "mean"), PALETTE);
    expect(getAt(out, [1, 1])).toEqual(app("mean", "S", stat("snip_l")));
  });
});

describe("wrap", () => {
  it("offers only ops that keep the type with the node as first argument", () => {
    const names = (type) => wrapOptions(PALETTE, type).map((o) => o.name);
    expect(names("L")).toEqual(["log", "standardise", "add"]);
    expect(names("S")).toEqual(["log", "add", "mul"]);
  });

  it("wraps with a constant as the extra argument where one fits", () => {
    const out = wrapAt(TREE, [0, 0], find("L", "add"), PALETTE);
    expect(getAt(out, [0, 0])).toEqual(app("add", "L", TREE.args[0].args[0], konst(1)));
    const s = wrapAt(TREE, [1], find("S", "mul"), PALETTE);
    expect(getAt(s, [1])).toEqual(app("mul", "S", TREE.args[1], konst(1)));
    expect(() => wrapAt(TREE, [1], find("S", "mean"), PALETTE)).toThrow();
  });
});

describe("palette", () => {
  it("filters by type", () => {
    const l = paletteFor(PALETTE, "L");
    expect(l.ops.every((o) => o.returns === "L")).toBe(true);
    expect(l.terminals.map((t) => t.name)).toEqual(["snip_l", "grad_norm_l"]);
    expect(l.constant).toBe(false);
    const s = paletteFor(PALETTE, "S");
    expect(s.ops.map((o) => o.name)).toContain("mean");
    expect(s.ops.map((o) => o.name)).not.toContain("standardise");
    expect(s.constant).toBe(true);
    expect(paletteFor({}, "S")).toEqual({ ops: [], terminals: [], constant: false });
  });

  it("labels nodes with symbols and readable constants", () => {
    const symbols = symbolsOf(PALETTE);
    expect(nodeLabel(TREE, symbols)).toBe("+");
    expect(nodeLabel(TREE.args[0], symbols)).toBe("mean");
    expect(nodeLabel(konst(1), symbols)).toBe("1.0");
    expect(formatConstant(0.1 + 0.2)).toBe("0.3");
  });
});

describe("undo/redo history", () => {
  const a = konst(1);
  const b = proxy("naswot");
  const c = app("log", "S", proxy("naswot"));

  it("records, undoes and redoes immutably", () => {
    const h0 = createHistory(a);
    const h1 = record(h0, b);
    const h2 = record(h1, c);
    expect(h0).toEqual({ past: [], present: a, future: [] });
    expect(canUndo(h2) && !canRedo(h2)).toBe(true);
    const u = undo(h2);
    expect(u.present).toBe(b);
    expect(h2.present).toBe(c);
    expect(redo(u).present).toBe(c);
    expect(undo(undo(u)).present).toBe(a);
    expect(undo(undo(undo(u)))).toEqual(undo(undo(u)));
    expect(record(u, a).future).toEqual([]);
    expect(record(h2, { ...c })).toBe(h2);
  });

  it("recognises accepted trees as undo, redo or a new edit", () => {
    let h = accept(accept(createHistory(a), b), c);
    expect(h.past).toEqual([a, b]);
    h = accept(h, structuredClone(b));
    expect(h.present).toEqual(b);
    expect(h.future).toEqual([c]);
    h = accept(h, c);
    expect(h.future).toEqual([]);
    expect(h.present).toEqual(c);
    h = accept(h, konst(7));
    expect(h.past).toEqual([a, b, c]);
  });

  it("compares trees structurally", () => {
    expect(treeEquals(TREE, structuredClone(TREE))).toBe(true);
    expect(treeEquals(TREE, replaceAt(TREE, [1, 0], konst(0.6)))).toBe(false);
    expect(treeEquals(konst(1), null)).toBe(false);
  });
});

describe("layout", () => {
  const deep = app(
    "add",
    "S",
    app("add", "S", app("mean", "S", app("add", "L", stat("a"), stat("b"))), proxy("p")),
    app("max", "S", app("log", "L", stat("c"))),
  );

  it("spaces leaves evenly and centres parents over their children", () => {
    const out = layoutTree(TREE);
    const at = Object.fromEntries(out.nodes.map((n) => [n.key, n]));
    expect(out.width).toBe(3);
    expect(out.height).toBe(4);
    expect([at["r.0.0.0"].x, at["r.1.0"].x, at["r.1.1"].x]).toEqual([0, 1, 2]);
    expect(at["r.1"].x).toBe(1.5);
    expect(at.r.x).toBe((at["r.0"].x + at["r.1"].x) / 2);
    expect(at["r.1.1"].y).toBe(2);
    expect(out.edges).toContainEqual({ from: "r.1", to: "r.1.0" });
    expect(out.edges).toHaveLength(out.nodes.length - 1);
  });

  it("never puts two nodes of one depth closer than a column", () => {
    for (const tree of [TREE, deep]) {
      const byDepth = new Map();
      for (const n of layoutTree(tree).nodes) {
        byDepth.set(n.y, [...(byDepth.get(n.y) || []), n.x]);
      }
      for (const xs of byDepth.values()) {
        xs.sort((p, q) => p - q);
        for (let i = 1; i < xs.length; i++) expect(xs[i] - xs[i - 1]).toBeGreaterThanOrEqual(1);
      }
    }
  });

  it("lays out a single leaf", () => {
    expect(layoutTree(konst(1))).toMatchObject({ width: 1, height: 1, edges: [] });
  });
});
