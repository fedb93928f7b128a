// VegaChart front end (gm_lab/widgets/vega.py): an offline Vega-Lite view fed by a synced trait.
//
// Contract with Python:
//   spec      Vega-Lite spec whose data is the named dataset "rows" (no inline data)
//   rows      list of row objects; key = the field that identifies a row ("" = none)
//   renderer  "svg" | "canvas"
//   selection set here: {fields: {field: [lo, hi]}} of the interval selection "brush", {} if none
// DOM: <div class="gm-vega-chart" data-rendered="1" data-rows="N"> (data-error on failure).
//
// A rows change is applied as a Vega changeset and re-runs the same view: re-embedding would
// reset the brush. Only a spec change re-embeds.

import embed from "vega-embed";
import { changeset, Error as LOG_ERROR } from "vega";

export const DATASET = "rows";
export const BRUSH = "brush";
const SELECTION_THROTTLE_MS = 80;

/** Whether a Vega-Lite spec declares an interval selection param named "brush" (any depth). */
export function hasBrush(spec) {
  if (Array.isArray(spec)) return spec.some(hasBrush);
  if (!spec || typeof spec !== "object") return false;
  if (Array.isArray(spec.params)) {
    for (const p of spec.params) {
      const type = typeof p?.select === "string" ? p.select : p?.select?.type;
      if (p?.name === BRUSH && type === "interval") return true;
    }
  }
  return Object.values(spec).some((v) => v && typeof v === "object" && hasBrush(v));
}

/**
 * What to change in the "rows" dataset to go from the previous rows to `rows`.
 *
 * `previous` is the Map (key -> {tuple, json}) returned last time, or null. With a key field
 * present and unique in every row, only removed, added and modified rows change (a modified
 * row is removed and re-inserted); otherwise everything is replaced. Returns
 * {full, remove, insert, next}; the inserted tuples are copies, since Vega tags them.
 */
export function planChange(previous, rows, key) {
  const full = () => {
    const insert = rows.map((r) => ({ ...r }));
    return { full: true, remove: [], insert, next: indexRows(insert, key) };
  };
  if (!key || previous === null) return full();
  const next = new Map();
  const remove = [];
  const insert = [];
  for (const row of rows) {
    if (row == null || !(key in row)) return full();
    const k = JSON.stringify(row[key]);
    if (next.has(k)) return full();
    const json = JSON.stringify(row);
    const old = previous.get(k);
    if (old && old.json === json) {
      next.set(k, old);
      continue;
    }
    if (old) remove.push(old.tuple);
    const tuple = { ...row };
    insert.push(tuple);
    next.set(k, { tuple, json });
  }
  for (const [k, old] of previous) if (!next.has(k)) remove.push(old.tuple);
  return { full: false, remove, insert, next };
}

function indexRows(tuples, key) {
  if (!key) return null;
  const index = new Map();
  for (const tuple of tuples) {
    if (tuple == null || !(key in tuple)) return null;
    const k = JSON.stringify(tuple[key]);
    if (index.has(k)) return null;
    // json of the row as Python sent it (the copy has no Vega tags yet)
    index.set(k, { tuple, json: JSON.stringify(tuple) });
  }
  return index;
}

/** A Vega changeset for a plan from `planChange`. */
export function toChangeset(plan) {
  const cs = changeset();
  if (plan.full) cs.remove(() => true);
  else if (plan.remove.length) cs.remove(plan.remove);
  return cs.insert(plan.insert);
}

/** The brush signal value ({field: [lo, hi]}) as JSON-ready ranges (dates as epoch ms). */
export function brushFields(value) {
  const fields = {};
  if (!value || typeof value !== "object") return fields;
  for (const [field, range] of Object.entries(value)) {
    const values = Array.isArray(range) ? range : [range];
    fields[field] = values.map((v) => (v instanceof Date ? v.getTime() : v));
  }
  return fields;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "gm-vega-chart";
  const target = document.createElement("div");
  target.className = "gm-vega-chart__view";
  root.append(target);
  el.append(root);

  let result = null; // vega-embed result of the current spec
  let index = null; // planChange state of the rows in the view
  let generation = 0; // bumps on each embed and on teardown: stale async work stops
  let queue = Promise.resolve(); // embeds and row updates run one after another
  let brushTimer = null;
  let brushValue = null;

  const enqueue = (task) => {
    queue = queue.then(task).catch(showError);
    return queue;
  };

  function showError(err) {
    console.error("gm-vega-chart:", err);
    root.dataset.error = String(err?.message ?? err);
    let pre = root.querySelector(".gm-vega-chart__error");
    if (!pre) {
      pre = document.createElement("pre");
      pre.className = "gm-vega-chart__error";
      root.append(pre);
    }
    pre.textContent = `chart error: ${root.dataset.error}`;
  }

  function clearError() {
    delete root.dataset.error;
    root.querySelector(".gm-vega-chart__error")?.remove();
  }

  function flushBrush() {
    brushTimer = null;
    model.set("selection", { fields: brushFields(brushValue) });
    model.save_changes();
  }

  function onBrush(_name, value) {
    brushValue = value;
    if (brushTimer === null) brushTimer = setTimeout(flushBrush, SELECTION_THROTTLE_MS);
  }

  async function applyRows() {
    if (!result) return;
    const gen = generation;
    const rows = model.get("rows") ?? [];
    const plan = planChange(index, rows, model.get("key"));
    index = plan.next;
    result.view.change(DATASET, toChangeset(plan));
    await result.view.runAsync();
    if (gen !== generation) return;
    root.dataset.rows = String(rows.length);
    root.dataset.rendered = "1";
  }

  async function embedSpec() {
    const gen = ++generation;
    root.dataset.rendered = "0";
    if (result) result.finalize();
    result = null;
    index = null;
    clearTimeout(brushTimer);
    brushTimer = null;
    const spec = model.get("spec") ?? {};
    if (!Object.keys(spec).length) {
      target.replaceChildren();
      root.dataset.rows = "0";
      root.dataset.rendered = "1";
      return;
    }
    // a copy: vega-embed and the compiler may annotate the spec object they are given
    const res = await embed(target, JSON.parse(JSON.stringify(spec)), {
      actions: false,
      renderer: model.get("renderer") || "svg",
      // the view starts with an empty "rows" dataset: its empty-extent warnings are noise
      logLevel: LOG_ERROR,
    });
    if (gen !== generation) {
      res.finalize();
      return;
    }
    result = res;
    clearError();
    if (hasBrush(spec)) result.view.addSignalListener(BRUSH, onBrush);
    // a new view has no brush: tell Python if it still holds an old one
    if (Object.keys(model.get("selection")?.fields ?? {}).length) {
      model.set("selection", {});
      model.save_changes();
    }
    await applyRows();
  }

  async function applyRenderer() {
    if (!result) return;
    // switching the renderer keeps the view, its data and its brush
    result.view.renderer(model.get("renderer") || "svg");
    await result.view.runAsync();
  }

  const onSpec = () => enqueue(embedSpec);
  const onRows = () => enqueue(applyRows);
  const onRenderer = () => enqueue(applyRenderer);
  model.on("change:spec", onSpec);
  model.on("change:rows", onRows);
  model.on("change:key", onRows);
  model.on("change:renderer", onRenderer);
  enqueue(embedSpec);

  return () => {
    generation += 1;
    clearTimeout(brushTimer);
    model.off("change:spec", onSpec);
    model.off("change:rows", onRows);
    model.off("change:key", onRows);
    model.off("change:renderer", onRenderer);
    if (result) result.finalize();
    result = null;
  };
}

export default { render };
