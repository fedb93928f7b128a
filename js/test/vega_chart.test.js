// @vitest-environment happy-dom
// VegaChart front end: Python's specs compile and render; rows stream in as changesets into the
// same view (no re-embed), so a brush survives; the brush reaches Python as ranges.
// Fixtures come from Python (`python tests/test_widget_charts.py` rewrites them).
import { afterEach, describe, expect, test, vi } from "vitest";
import { parse, View } from "vega";
import { compile } from "vega-lite";

// the real vega-embed, wrapped in a spy to count embeds
vi.mock("vega-embed", async (importOriginal) => {
  const real = await importOriginal();
  return { ...real, default: vi.fn(real.default) };
});
import embed from "vega-embed";
import widget, { brushFields, hasBrush, planChange, toChangeset } from "../src/vega_chart.js";
import scatter from "./fixtures/scatter.json";
import strata from "./fixtures/strata.json";
import fitness from "./fixtures/fitness.json";

const FIXTURES = { scatter, strata, fitness };
const clone = (x) => JSON.parse(JSON.stringify(x));

function fakeModel(state) {
  const handlers = {};
  return {
    saved: 0,
    get: (name) => state[name],
    set(name, value) {
      state[name] = value;
      for (const f of handlers[`change:${name}`] ?? []) f();
    },
    save_changes() {
      this.saved += 1;
    },
    on: (event, f) => (handlers[event] ??= []).push(f),
    off: (event, f) => (handlers[event] = (handlers[event] ?? []).filter((g) => g !== f)),
    listeners: (event) => (handlers[event] ?? []).length,
  };
}

async function until(cond, ms = 5000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A headless view of a fixture's spec, compiled as the widget's bundle would. */
async function headlessView(fixture) {
  const view = new View(parse(compile(clone(fixture.spec)).spec), { renderer: "none" });
  const plan = planChange(null, fixture.rows, fixture.key);
  view.change("rows", toChangeset(plan));
  await view.runAsync();
  return { view, plan };
}

/** Drag a brush from data point (x0, y0) to (x1, y1) by setting the pixel signals. */
async function brush(view, [x0, y0], [x1, y1]) {
  const x = view.scale("x");
  const y = view.scale("y");
  // the field is named "x", so Vega-Lite renames the pixel signal of channel x to brush_x_1
  view.signal("brush_x_1", [x(x0), x(x1)]);
  view.signal("brush_y", [y(y0), y(y1)]);
  await view.runAsync();
}

// plain rows sorted by index (JSON drops the tuple ids Vega tags its tuples with)
const byIndex = (rows) => clone([...rows].sort((a, b) => a.index - b.index));
const points = (root) => root.querySelectorAll("g.mark-symbol.role-mark path").length;

describe("specs built by Python", () => {
  test.each(Object.keys(FIXTURES))("%s compiles with vega-lite and renders marks", async (name) => {
    const fixture = FIXTURES[name];
    const { view } = await headlessView(fixture);
    expect(view.data("rows")).toHaveLength(fixture.rows.length);
    const svg = await view.toSVG();
    expect(svg).toMatch(/mark-(symbol|rect|line)/);
    expect(svg.match(/role="graphics-symbol"/g)?.length ?? 0).toBeGreaterThan(0);
    view.finalize();
  });

  test("only the scatter declares the brush", () => {
    expect(hasBrush(scatter.spec)).toBe(true);
    expect(hasBrush(strata.spec)).toBe(false);
    expect(hasBrush(fitness.spec)).toBe(false);
  });
});

describe("row changesets", () => {
  test("a keyed change removes, inserts and re-inserts only what changed", async () => {
    const { view, plan } = await headlessView(scatter);
    const rows = clone(scatter.rows);
    const removed = rows.splice(0, 1)[0];
    rows[0] = { ...rows[0], accuracy: 99.5 }; // modified
    rows.push({ ...rows[1], index: 100000, arch: "new" }); // added
    const next = planChange(plan.next, rows, "index");
    expect(next.full).toBe(false);
    expect(next.remove).toHaveLength(2); // the removed and the old version of the modified row
    expect(next.insert.map((r) => r.index)).toEqual([rows[0].index, 100000]);
    view.change("rows", toChangeset(next));
    await view.runAsync();
    expect(byIndex(view.data("rows"))).toEqual(byIndex(rows));
    expect(view.data("rows").some((r) => r.index === removed.index)).toBe(false);
    // unchanged rows keep their tuples
    expect(planChange(next.next, rows, "index").insert).toHaveLength(0);
  });

  test("without a usable key everything is replaced", () => {
    const rows = [{ a: 1 }, { a: 1 }];
    expect(planChange(null, rows, "a").full).toBe(true);
    const plan = planChange(new Map(), rows, "a"); // duplicate key
    expect(plan.full).toBe(true);
    expect(plan.next).toBe(null);
    expect(planChange(new Map(), [{ b: 2 }], "a").full).toBe(true); // key missing
    expect(planChange(new Map(), rows, "").full).toBe(true);
  });

  test("the brush survives a rows change in the same view", async () => {
    const { view, plan } = await headlessView(scatter);
    await brush(view, [5, 20], [30, 80]);
    const before = clone(view.signal("brush"));
    expect(Object.keys(before).sort()).toEqual(["accuracy", "x"]);
    expect(before.x[0]).toBeCloseTo(5);
    expect(before.x[1]).toBeCloseTo(30);
    const rows = scatter.rows.map((r) => ({ ...r, accuracy: r.accuracy + 1 }));
    view.change("rows", toChangeset(planChange(plan.next, rows, "index")));
    await view.runAsync();
    expect(clone(view.signal("brush"))).toEqual(before);
    expect(brushFields(view.signal("brush"))).toEqual(before);
  });

  test("brush values become JSON ranges", () => {
    expect(brushFields(null)).toEqual({});
    expect(brushFields({ t: [new Date(5), new Date(9)], x: [1, 2] })).toEqual({
      t: [5, 9],
      x: [1, 2],
    });
  });
});

describe("widget render", () => {
  afterEach(() => {
    embed.mockClear();
    document.body.replaceChildren();
  });

  function mount(fixture, extra = {}) {
    const model = fakeModel({
      spec: clone(fixture.spec),
      rows: clone(fixture.rows),
      key: fixture.key,
      renderer: "svg",
      selection: {},
      ...extra,
    });
    const el = document.createElement("div");
    document.body.append(el);
    const cleanup = widget.render({ model, el });
    const root = el.querySelector(".gm-vega-chart");
    return { model, el, root, cleanup };
  }

  test("embeds once, then streams rows into the same view", async () => {
    const { model, root, cleanup } = mount(scatter);
    expect(root).not.toBeNull();
    await until(() => root.dataset.rendered === "1");
    expect(embed).toHaveBeenCalledTimes(1);
    expect(embed.mock.calls[0][2]).toMatchObject({ actions: false, renderer: "svg" });
    expect(root.dataset.rows).toBe(String(scatter.rows.length));
    expect(points(root)).toBe(scatter.rows.length);
    const { view } = await embed.mock.results[0].value;

    const rows = scatter.rows.slice(0, 25).map((r) => ({ ...r, accuracy: 50 }));
    model.set("rows", rows);
    await until(() => root.dataset.rows === "25");
    expect(embed).toHaveBeenCalledTimes(1); // no re-embed
    expect((await embed.mock.results[0].value).view).toBe(view);
    expect(view.data("rows")).toHaveLength(25);
    expect(view.data("rows").every((r) => r.accuracy === 50)).toBe(true);
    expect(points(root)).toBe(25);
    cleanup();
  });

  test("a brush reaches Python as ranges and survives live rows", async () => {
    const { model, root, cleanup } = mount(scatter);
    await until(() => root.dataset.rendered === "1");
    const { view } = await embed.mock.results[0].value;
    await brush(view, [5, 20], [30, 80]);
    await until(() => model.saved > 0);
    const fields = model.get("selection").fields;
    expect(Object.keys(fields).sort()).toEqual(["accuracy", "x"]);
    expect(fields.x[0]).toBeCloseTo(5);
    expect(fields.x[1]).toBeCloseTo(30);

    const saved = model.saved;
    model.set("rows", scatter.rows.map((r) => ({ ...r, accuracy: r.accuracy + 0.5 })));
    await until(() => view.data("rows")[0].accuracy !== scatter.rows[0].accuracy);
    expect(embed).toHaveBeenCalledTimes(1);
    expect(brushFields(view.signal("brush"))).toEqual(fields); // the brush is still drawn
    await new Promise((r) => setTimeout(r, 120));
    expect(model.saved).toBe(saved); // and Python was not told to drop it
    cleanup();
  });

  test("a new spec re-embeds and clears the old brush", async () => {
    const { model, root, cleanup } = mount(scatter, {
      selection: { fields: { x: [1, 2], accuracy: [10, 20] } },
    });
    await until(() => root.dataset.rendered === "1");
    expect(model.get("selection")).toEqual({}); // a fresh view has no brush
    model.set("spec", { ...clone(scatter.spec), title: "new title" });
    await until(() => embed.mock.calls.length === 2 && root.dataset.rendered === "1");
    expect(root.textContent).toContain("new title");
    expect(root.dataset.rows).toBe(String(scatter.rows.length));
    cleanup();
  });

  test("layered strata and fitness charts render; cleanup detaches listeners", async () => {
    for (const fixture of [strata, fitness]) {
      const { model, root, cleanup } = mount(fixture); // (happy-dom has no canvas context)
      await until(() => root.dataset.rendered === "1");
      expect(root.dataset.rows).toBe(String(fixture.rows.length));
      expect(root.dataset.error).toBeUndefined();
      cleanup();
      expect(model.listeners("change:rows")).toBe(0);
      expect(model.listeners("change:spec")).toBe(0);
    }
  });

  test("a spec that does not compile shows an error instead of throwing", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { root, cleanup } = mount(scatter, {
      spec: { data: { name: "rows" }, mark: "nope" },
    });
    await until(() => root.dataset.error !== undefined);
    expect(root.querySelector(".gm-vega-chart__error").textContent).toMatch(/chart error/);
    expect(logged).toHaveBeenCalled();
    logged.mockRestore();
    cleanup();
  });
});
