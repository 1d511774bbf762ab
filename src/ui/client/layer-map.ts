/**
 * The layer map: every unit of a layer as one cell of a canvas, drawn from the
 * binary map (src/ui/map-format.ts) into one ImageData, so 65,536 units cost
 * one pass over the pixels rather than a DOM node each. Cells can be ordered
 * by unit, rate or state and filtered by state and rate; hovering shows a
 * unit's rate and dead bound, clicking opens the unit.
 */
import {
  type LayerMap,
  MAP_FLAG_BORN_DEAD,
  MAP_FLAG_CONSTANT,
  MAP_STATE_MASK,
  MAP_STATES,
} from "../map-format.js";
import type { UnitState } from "./api.js";
import { fmtRate, h, stateLabel } from "./dom.js";
import { BORN_DEAD_RGB, CONSTANT_RGB, type Rgb, rateRgb, STATE_RGB } from "./palette.js";

export type ColourBy = "state" | "rate";
export type SortBy = "unit" | "rate" | "state";
export type RateFilter = "all" | "zero" | "lt1e-3" | "lt1e-2" | "ge1e-2";

export interface MapView {
  colourBy: ColourBy;
  sortBy: SortBy;
  states: Set<UnitState>;
  rate: RateFilter;
}

/** performance.mark name set when the map is first drawn. */
export const MAP_DRAWN_MARK = "reluwatch:layer-map-drawn";
const MAX_WIDTH = 1024;
const MAX_HEIGHT = 640;
const MAX_CELL = 24;

function keepRate(rate: number, f: RateFilter): boolean {
  switch (f) {
    case "all":
      return true;
    case "zero":
      return rate === 0;
    case "lt1e-3":
      return rate < 1e-3;
    case "lt1e-2":
      return rate < 1e-2;
    case "ge1e-2":
      return rate >= 1e-2;
  }
}

export class LayerMapCanvas {
  readonly canvas: HTMLCanvasElement;
  readonly tooltip: HTMLDivElement;
  private map: LayerMap | undefined;
  /** order[i]: the unit drawn in cell i. */
  private order = new Uint32Array(0);
  private cell = 1;
  private cols = 1;

  constructor(
    private view: MapView,
    private readonly confidence: () => number,
    private readonly onOpen: (unit: number) => void,
  ) {
    this.canvas = h("canvas", { class: "layer-map", "data-testid": "layer-map", role: "img" });
    this.tooltip = h("div", { class: "tooltip", hidden: true, "data-testid": "map-tooltip" });
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.tooltip.hidden = true;
    });
    this.canvas.addEventListener("click", (e) => {
      const unit = this.unitAt(e);
      if (unit !== undefined) this.onOpen(unit);
    });
  }

  setView(view: MapView): void {
    this.view = view;
    this.draw();
  }

  setMap(map: LayerMap): void {
    this.map = map;
    this.draw();
  }

  private state(u: number): UnitState {
    return MAP_STATES[this.map!.flags[u]! & MAP_STATE_MASK]!;
  }

  private layout(): void {
    const map = this.map!;
    const keep: number[] = [];
    for (let u = 0; u < map.units; u++) {
      if (this.view.states.has(this.state(u)) && keepRate(map.firing_rate[u]!, this.view.rate)) keep.push(u);
    }
    const rate = map.firing_rate;
    if (this.view.sortBy === "rate") keep.sort((a, b) => rate[a]! - rate[b]! || a - b);
    if (this.view.sortBy === "state") {
      const rank = (u: number) => [3, 2, 1, 0][map.flags[u]! & MAP_STATE_MASK]!;
      keep.sort((a, b) => rank(a) - rank(b) || rate[a]! - rate[b]! || a - b);
    }
    this.order = Uint32Array.from(keep);
    const n = Math.max(1, keep.length);
    const width = Math.min(MAX_WIDTH, this.canvas.parentElement?.clientWidth || MAX_WIDTH);
    this.cell = Math.max(1, Math.min(MAX_CELL, Math.floor(Math.sqrt((width * MAX_HEIGHT) / n))));
    this.cols = Math.max(1, Math.floor(width / this.cell));
  }

  private draw(): void {
    const map = this.map;
    if (map === undefined) return;
    this.layout();
    const s = this.cell;
    const n = this.order.length;
    const rows = Math.max(1, Math.ceil(n / this.cols));
    const W = this.cols * s;
    const H = rows * s;
    if (this.canvas.width !== W) this.canvas.width = W;
    if (this.canvas.height !== H) this.canvas.height = H;
    const ctx = this.canvas.getContext("2d")!;
    const img = ctx.createImageData(W, H);
    const px = img.data;
    // A gap between cells once they are big enough to see one; the mark is the middle third.
    const gap = s >= 4 ? 1 : 0;
    const m0 = Math.floor(s / 3);
    const m1 = Math.max(m0 + 1, Math.ceil((2 * s) / 3));
    for (let i = 0; i < n; i++) {
      const u = this.order[i]!;
      const f = map.flags[u]!;
      const base: Rgb =
        this.view.colourBy === "state"
          ? STATE_RGB[MAP_STATES[f & MAP_STATE_MASK]!]
          : rateRgb(map.firing_rate[u]!);
      const mark: Rgb | undefined =
        f & MAP_FLAG_BORN_DEAD ? BORN_DEAD_RGB : f & MAP_FLAG_CONSTANT ? CONSTANT_RGB : undefined;
      const x0 = (i % this.cols) * s;
      const y0 = Math.floor(i / this.cols) * s;
      for (let dy = 0; dy < s - gap; dy++) {
        let p = ((y0 + dy) * W + x0) * 4;
        for (let dx = 0; dx < s - gap; dx++, p += 4) {
          const c = mark !== undefined && s >= 3 && dx >= m0 && dx < m1 && dy >= m0 && dy < m1 ? mark : base;
          px[p] = c[0];
          px[p + 1] = c[1];
          px[p + 2] = c[2];
          px[p + 3] = 255;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    // The first draw of a page is the map's first paint; `make bench` reads this mark.
    if (performance.getEntriesByName(MAP_DRAWN_MARK).length === 0) performance.mark(MAP_DRAWN_MARK);
    // For tests and tools: what was drawn, and where cell i is.
    this.canvas.setAttribute(
      "aria-label",
      `map of ${n} of the layer's ${map.units} units, coloured by ${this.view.colourBy === "state" ? "state" : "firing rate"}`,
    );
    this.canvas.dataset.cells = String(n);
    this.canvas.dataset.units = String(map.units);
    this.canvas.dataset.cell = String(s);
    this.canvas.dataset.cols = String(this.cols);
    this.canvas.dataset.step = String(map.step);
  }

  private unitAt(e: MouseEvent): number | undefined {
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) * (this.canvas.width / r.width)) / this.cell);
    const y = Math.floor(((e.clientY - r.top) * (this.canvas.height / r.height)) / this.cell);
    if (x < 0 || x >= this.cols || y < 0) return undefined;
    const i = y * this.cols + x;
    return i < this.order.length ? this.order[i] : undefined;
  }

  private hover(e: MouseEvent): void {
    const u = this.unitAt(e);
    const map = this.map;
    if (u === undefined || map === undefined) {
      this.tooltip.hidden = true;
      return;
    }
    const f = map.flags[u]!;
    const extra = [f & MAP_FLAG_BORN_DEAD ? "born dead" : "", f & MAP_FLAG_CONSTANT ? "constant" : ""]
      .filter(Boolean)
      .join(", ");
    this.tooltip.replaceChildren(
      h("strong", {}, `unit ${u}`),
      ` · ${stateLabel(this.state(u))}${extra ? ` (${extra})` : ""}`,
      h("br"),
      // Two different rates: the window's average, and the bound the silence since the last fire proves.
      `window rate ${fmtRate(map.firing_rate[u]!)} · since its last fire: rate < ${fmtRate(map.rate_upper_bound[u]!)} at ${(this.confidence() * 100).toFixed(1)}% confidence`,
    );
    this.tooltip.hidden = false;
    const box = this.canvas.parentElement!.getBoundingClientRect();
    this.tooltip.style.left = `${e.clientX - box.left + 14}px`;
    this.tooltip.style.top = `${e.clientY - box.top + 14}px`;
  }
}
