/**
 * The tracked-units budget: how many units (summed over every layer of every
 * run) the detector may hold at once, which bounds its memory (about 62 bytes
 * a unit without activation sums, 102 with: docs/scaling.md). A new layer is
 * admitted while the budget holds; when it does not, the runs that sent
 * nothing for `idleMs` are evicted, the longest idle first, until the layer
 * fits. If even that leaves too little room the layer is refused. Layers
 * already tracked always keep flowing: a sweep of many small runs shares the
 * budget with a few large ones instead of being cut off at a run count.
 *
 * Example: a budget of 1,000 units holding run A (600 units, idle for an
 * hour) and run B (300 units, active): a new 400-unit layer of run C evicts A
 * (900 + 400 > 1,000, and A is idle) and is admitted; had A been active too,
 * C's layer would have been refused with `limit_tracked_units`.
 */
import { layerKey } from "../core/snapshot.js";

export interface BudgetLimits {
  max_tracked_units: number;
  max_layers_per_run: number;
  max_units_per_layer: number;
}

export const LIMIT_REASONS = [
  "limit_tracked_units",
  "limit_layers_per_run",
  "limit_units_per_layer",
] as const;
export type LimitReason = (typeof LIMIT_REASONS)[number];

export type Admission =
  | { admitted: true /** Runs to forget first, to make room. */; evict: string[] }
  | { admitted: false; reason: LimitReason; message: string };

interface TrackedRun {
  layers: Map<string, number>;
  units: number;
  lastMs: number;
}

export class UnitBudget {
  private readonly runs = new Map<string, TrackedRun>();
  private used = 0;

  constructor(private readonly limits: BudgetLimits) {}

  /** Units tracked now. */
  get trackedUnits(): number {
    return this.used;
  }

  /**
   * Whether a snapshot of `run`/`layer` with `units` units may be applied at
   * `nowMs`, and which idle runs must be evicted first. Records nothing:
   * `track` does, once the snapshot was applied.
   */
  admit(run: string, layer: string, units: number, nowMs: number, idleMs: number): Admission {
    const { max_tracked_units, max_layers_per_run, max_units_per_layer } = this.limits;
    if (units > max_units_per_layer) {
      return {
        admitted: false,
        reason: "limit_units_per_layer",
        message: `layer ${layerKey(run, layer)} has ${units} units; max_units_per_layer is ${max_units_per_layer}`,
      };
    }
    const tracked = this.runs.get(run);
    if (tracked?.layers.has(layer)) return { admitted: true, evict: [] };
    if (tracked && tracked.layers.size >= max_layers_per_run) {
      return {
        admitted: false,
        reason: "limit_layers_per_run",
        message: `layer ${layerKey(run, layer)} would exceed max_layers_per_run (${max_layers_per_run})`,
      };
    }
    let free = max_tracked_units - this.used;
    const evict: string[] = [];
    if (units > free) {
      const idle = [...this.runs]
        .filter(([id, r]) => id !== run && nowMs - r.lastMs >= idleMs)
        .sort((a, b) => a[1].lastMs - b[1].lastMs);
      for (const [id, r] of idle) {
        if (units <= free) break;
        evict.push(id);
        free += r.units;
      }
      if (units > free) {
        return {
          admitted: false,
          reason: "limit_tracked_units",
          message: `layer ${layerKey(run, layer)} of ${units} units does not fit: ${this.used} of max_tracked_units (${max_tracked_units}) are tracked and no idle run frees enough`,
        };
      }
    }
    return { admitted: true, evict };
  }

  /** Counts an applied snapshot's layer (once) and marks its run active at `nowMs`. */
  track(run: string, layer: string, units: number, nowMs: number): void {
    let r = this.runs.get(run);
    if (!r) {
      r = { layers: new Map(), units: 0, lastMs: nowMs };
      this.runs.set(run, r);
    }
    r.lastMs = Math.max(r.lastMs, nowMs);
    if (r.layers.has(layer)) return;
    r.layers.set(layer, units);
    r.units += units;
    this.used += units;
  }

  forgetRun(run: string): void {
    const r = this.runs.get(run);
    if (!r) return;
    this.used -= r.units;
    this.runs.delete(run);
  }

  forgetLayer(run: string, layer: string): void {
    const r = this.runs.get(run);
    const units = r?.layers.get(layer);
    if (!r || units === undefined) return;
    r.layers.delete(layer);
    r.units -= units;
    this.used -= units;
    if (r.layers.size === 0) this.runs.delete(run);
  }
}
