/**
 * The explorer's four pages. Each render function builds its page once and
 * returns a refresh function the live loop calls; refresh re-reads the API
 * and updates the numbers in place, so a hover or a chosen filter survives.
 */
import {
  fetchLayer,
  fetchLayers,
  fetchMap,
  fetchRuns,
  fetchTransitions,
  fetchUnit,
  type LayerSummary,
  STATES,
  type Transition,
  type UnitState,
} from "./api.js";
import { fmtInt, fmtPct, fmtRate, h, pageHref, stateLabel } from "./dom.js";
import { type ColourBy, LayerMapCanvas, type MapView, type RateFilter, type SortBy } from "./layer-map.js";
import {
  BORN_DEAD_MARK,
  CONSTANT_MARK,
  RATE_MIN_LOG10,
  rateRgb,
  rgbCss,
  STATE_COLOURS,
  ZERO_RATE_COLOUR,
} from "./palette.js";

export type Refresh = () => Promise<void>;
export type Navigate = (href: string) => void;

function table(head: string[], rows: HTMLTableRowElement[], testid: string): HTMLTableElement {
  return h(
    "table",
    { "data-testid": testid },
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows),
  );
}

function link(href: string, text: string, navigate: Navigate): HTMLAnchorElement {
  const a = h("a", { href }, text);
  a.addEventListener("click", (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  });
  return a;
}

function swatch(colour: string): HTMLSpanElement {
  const s = h("span", { class: "swatch" });
  s.style.background = colour;
  return s;
}

/** A swatch with the small square drawn in the middle of a marked cell. */
function marked(colour: string, markColour: string): HTMLSpanElement {
  const s = swatch(colour);
  const m = h("span", { class: "mark" });
  m.style.background = markColour;
  s.append(m);
  return s;
}

// ---- runs -------------------------------------------------------------------------------------

export function runsPage(root: HTMLElement, navigate: Navigate): Refresh {
  const body = h("div");
  root.replaceChildren(h("h1", {}, "Runs"), body);
  return async () => {
    const runs = await fetchRuns();
    if (runs.length === 0) {
      body.replaceChildren(
        h("p", { class: "muted" }, "No runs yet: this instance has not received snapshots."),
      );
      return;
    }
    body.replaceChildren(
      table(
        ["run", "layers", "units", "dead", "newest step"],
        runs.map((r) =>
          h(
            "tr",
            { "data-run": r.run_id },
            h("td", {}, link(pageHref("run", { run: r.run_id }), r.run_id, navigate)),
            h("td", { class: "num" }, fmtInt(r.layers)),
            h("td", { class: "num" }, fmtInt(r.units)),
            h("td", { class: "num", "data-testid": "run-dead" }, fmtInt(r.dead)),
            h("td", { class: "num" }, fmtInt(r.step)),
          ),
        ),
        "runs",
      ),
    );
  };
}

// ---- layers of a run --------------------------------------------------------------------------

export function runPage(root: HTMLElement, run: string, navigate: Navigate): Refresh {
  const body = h("div");
  root.replaceChildren(h("h1", {}, "Run ", h("code", {}, run)), body);
  return async () => {
    const layers = await fetchLayers(run);
    body.replaceChildren(
      table(
        [
          "layer",
          "units",
          ...STATES.map(stateLabel),
          "dead ratio",
          "deaths / revivals",
          "born dead",
          "newest step",
          "stale ranks",
          "NaN/Inf",
        ],
        layers.map((l) =>
          h(
            "tr",
            { "data-layer": l.layer },
            h("td", {}, link(pageHref("layer", { run, layer: l.layer }), l.layer, navigate)),
            h("td", { class: "num" }, fmtInt(l.layer_units)),
            ...STATES.map((s) => h("td", { class: "num", "data-state": s }, fmtInt(l.units_by_state[s]))),
            h("td", { class: "num" }, fmtPct(l.dead_ratio)),
            h("td", { class: "num" }, `${fmtInt(l.deaths_total)} / ${fmtInt(l.revivals_total)}`),
            h("td", { class: "num" }, fmtInt(l.born_dead_units)),
            h("td", { class: "num" }, fmtInt(l.step)),
            h(
              "td",
              { class: l.stale_ranks > 0 ? "num warn" : "num" },
              `${l.stale_ranks} of ${l.ranks.length}`,
            ),
            h(
              "td",
              { class: l.nonfinite_values_total > 0 ? "num warn" : "num" },
              fmtInt(l.nonfinite_values_total),
            ),
          ),
        ),
        "layers",
      ),
    );
  };
}

// ---- layer map --------------------------------------------------------------------------------

function stat(label: string, testid: string): [HTMLElement, HTMLElement] {
  const value = h("span", { class: "value", "data-testid": testid }, "…");
  return [h("div", { class: "stat" }, h("span", { class: "label" }, label), value), value];
}

function select<T extends string>(label: string, options: Array<[T, string]>, value: T, on: (v: T) => void) {
  const el = h(
    "select",
    { "aria-label": label },
    ...options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)),
  );
  el.addEventListener("change", () => on(el.value as T));
  return h("label", {}, `${label} `, el);
}

function legend(colourBy: ColourBy): HTMLElement {
  const items: HTMLElement[] =
    colourBy === "state"
      ? STATES.map((s) => h("span", { class: "item" }, swatch(STATE_COLOURS[s]), stateLabel(s)))
      : [
          h("span", { class: "item" }, swatch(ZERO_RATE_COLOUR), "0 (no fire in window)"),
          h(
            "span",
            { class: "item" },
            ...Array.from({ length: -RATE_MIN_LOG10 + 1 }, (_, i) => {
              const r = 10 ** (RATE_MIN_LOG10 + i);
              return h(
                "span",
                { class: "tick" },
                swatch(rgbCss(rateRgb(r))),
                i === 0 ? `≤${fmtRate(r)}` : fmtRate(r),
              );
            }),
          ),
        ];
  return h(
    "div",
    { class: "legend", "data-testid": "legend" },
    ...items,
    h("span", { class: "item" }, marked(STATE_COLOURS.DEAD, BORN_DEAD_MARK), "born dead (white centre)"),
    h("span", { class: "item" }, marked(STATE_COLOURS.ACTIVE, CONSTANT_MARK), "constant (black centre)"),
  );
}

function transitionRows(ts: Transition[], run: string, layer: string, navigate: Navigate, withUnit: boolean) {
  return ts.map((t) =>
    h(
      "tr",
      {},
      withUnit
        ? h("td", {}, link(pageHref("unit", { run, layer, unit: t.unit }), String(t.unit), navigate))
        : null,
      h("td", { class: "num" }, fmtInt(t.step)),
      h("td", {}, `${stateLabel(t.from)} → ${stateLabel(t.to)}${t.born_dead ? " (born dead)" : ""}`),
      h("td", { class: "num" }, fmtRate(t.firing_rate)),
      h("td", { class: "num" }, fmtRate(t.rate_upper_bound)),
    ),
  );
}

export function layerPage(root: HTMLElement, run: string, layer: string, navigate: Navigate): Refresh {
  const view: MapView = { colourBy: "state", sortBy: "unit", states: new Set(STATES), rate: "all" };
  let confidence = 0.999;
  const mapCanvas = new LayerMapCanvas(
    view,
    () => confidence,
    (unit) => navigate(pageHref("unit", { run, layer, unit })),
  );
  const stats = h("div", { class: "stats" });
  const counts = new Map<UnitState, HTMLElement>();
  for (const s of STATES) {
    const [box, value] = stat(stateLabel(s), `count-${s}`);
    box.prepend(swatch(STATE_COLOURS[s]));
    counts.set(s, value);
    stats.append(box);
  }
  const [unitsBox, unitsValue] = stat("units", "layer-units");
  const [ratioBox, ratioValue] = stat("dead ratio", "dead-ratio");
  const [bornBox, bornValue] = stat("born dead", "born-dead");
  const [constBox, constValue] = stat("constant", "constant");
  const [stepBox, stepValue] = stat("newest step", "layer-step");
  const [staleBox, staleValue] = stat("stale ranks", "stale-ranks");
  const [nanBox, nanValue] = stat("NaN/Inf values", "nonfinite");
  stats.prepend(unitsBox);
  stats.append(ratioBox, bornBox, constBox, stepBox, staleBox, nanBox);

  const legendSlot = h("div");
  const redraw = () => {
    legendSlot.replaceChildren(legend(view.colourBy));
    mapCanvas.setView(view);
  };
  const stateBoxes = STATES.map((s) => {
    const box = h("input", { type: "checkbox", checked: true, value: s });
    box.addEventListener("change", () => {
      if (box.checked) view.states.add(s);
      else view.states.delete(s);
      redraw();
    });
    return h("label", { class: "check" }, box, swatch(STATE_COLOURS[s]), stateLabel(s));
  });
  const controls = h(
    "div",
    { class: "controls" },
    select<ColourBy>(
      "colour by",
      [
        ["state", "state"],
        ["rate", "firing rate (log)"],
      ],
      view.colourBy,
      (v) => {
        view.colourBy = v;
        redraw();
      },
    ),
    select<SortBy>(
      "order",
      [
        ["unit", "unit index"],
        ["rate", "firing rate, lowest first"],
        ["state", "state (dead first), then rate"],
      ],
      view.sortBy,
      (v) => {
        view.sortBy = v;
        redraw();
      },
    ),
    select<RateFilter>(
      "rate",
      [
        ["all", "any"],
        ["zero", "= 0"],
        ["lt1e-3", "< 0.001"],
        ["lt1e-2", "< 0.01"],
        ["ge1e-2", "≥ 0.01"],
      ],
      view.rate,
      (v) => {
        view.rate = v;
        redraw();
      },
    ),
    h("span", { class: "checks" }, "show ", ...stateBoxes),
  );
  const recent = h("div");
  root.replaceChildren(
    h(
      "h1",
      {},
      "Layer ",
      h("code", {}, layer),
      h("span", { class: "muted" }, " of run "),
      h("code", {}, run),
    ),
    stats,
    controls,
    legendSlot,
    h("div", { class: "map-box" }, mapCanvas.canvas, mapCanvas.tooltip),
    h("h2", {}, "Newest transitions"),
    recent,
  );
  legendSlot.replaceChildren(legend(view.colourBy));

  return async () => {
    const [summary, map, transitions] = await Promise.all([
      fetchLayer(run, layer),
      fetchMap(run, layer),
      fetchTransitions(run, layer, 20),
    ]);
    confidence = summary.confidence;
    showSummary(summary.summary);
    mapCanvas.setMap(map);
    recent.replaceChildren(
      transitions.length === 0
        ? h("p", { class: "muted" }, "No transitions logged yet.")
        : table(
            ["unit", "step", "change", "rate", "rate bound"],
            transitionRows(transitions, run, layer, navigate, true),
            "transitions",
          ),
    );
  };

  function showSummary(s: LayerSummary): void {
    for (const st of STATES) counts.get(st)!.textContent = fmtInt(s.units_by_state[st]);
    unitsValue.textContent = fmtInt(s.layer_units);
    ratioValue.textContent = fmtPct(s.dead_ratio);
    bornValue.textContent = fmtInt(s.born_dead_units);
    constValue.textContent = fmtInt(s.constant_units);
    stepValue.textContent = fmtInt(s.step);
    stepValue.dataset.step = String(s.step);
    staleValue.textContent = `${s.stale_ranks} of ${s.ranks.length}`;
    nanValue.textContent = fmtInt(s.nonfinite_values_total);
  }
}

// ---- unit -------------------------------------------------------------------------------------

export function unitPage(
  root: HTMLElement,
  run: string,
  layer: string,
  unit: number,
  navigate: Navigate,
): Refresh {
  const body = h("div");
  root.replaceChildren(
    h(
      "h1",
      {},
      "Unit ",
      h("code", {}, String(unit)),
      h("span", { class: "muted" }, " of layer "),
      link(pageHref("layer", { run, layer }), layer, navigate),
    ),
    body,
  );
  return async () => {
    const p = await fetchUnit(run, layer, unit);
    const u = p.unit;
    const death = p.transitions.find((t) => t.to === "DEAD");
    const flags = [u.born_dead ? "born dead" : "", u.constant ? "constant activation" : ""].filter(Boolean);
    // data-value: the number behind the formatted text, for tools and tests.
    const row = (label: string, value: Node | string, testid: string, raw?: number | null) =>
      h(
        "tr",
        {},
        h("th", {}, label),
        h("td", { "data-testid": testid, "data-value": raw ?? undefined }, value),
      );
    const stateCell = h("span", { class: "state" }, swatch(STATE_COLOURS[u.state]), stateLabel(u.state));
    body.replaceChildren(
      h(
        "table",
        { class: "kv", "data-testid": "unit" },
        h(
          "tbody",
          {},
          row("state", stateCell, "unit-state"),
          row(
            "windowed firing rate",
            `${fmtRate(u.firing_rate)} (${fmtInt(u.fires)} fires in ${fmtInt(u.samples)} samples)`,
            "unit-rate",
          ),
          row(
            "rate upper bound",
            `${fmtRate(u.rate_upper_bound)} with ${(p.confidence * 100).toFixed(1)}% confidence (after ${fmtInt(u.n_silent)} silent samples; dead below ${fmtRate(p.dead_rate)}, which takes ${fmtInt(p.samples_needed)})`,
            "unit-bound",
            u.rate_upper_bound,
          ),
          row(
            "last fire step",
            u.last_fire_step === null ? "never seen firing" : fmtInt(u.last_fire_step),
            "unit-last-fire",
            u.last_fire_step,
          ),
          row("died at step", death === undefined ? "—" : fmtInt(death.step), "unit-death-step", death?.step),
          row("flags", flags.length === 0 ? "none" : flags.join(", "), "unit-flags"),
          row("dormancy (ReDo)", u.dormancy === null ? "—" : u.dormancy.toFixed(3), "unit-dormancy"),
          row("newest step of the layer", fmtInt(p.step), "unit-layer-step"),
        ),
      ),
      h("h2", {}, "Transitions seen by this instance"),
      p.transitions.length === 0
        ? h("p", { class: "muted" }, "None logged.")
        : table(
            ["step", "change", "rate", "rate bound"],
            transitionRows(p.transitions, run, layer, navigate, false),
            "unit-transitions",
          ),
    );
  };
}
