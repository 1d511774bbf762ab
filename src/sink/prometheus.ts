/**
 * The Prometheus exporter. Layer metrics are computed in `collect()` from the
 * detector's layer summaries at scrape time, so a scrape always shows the
 * current state and a dropped layer's series vanish with it. Pipeline metrics
 * (snapshots, lag, age) are counted as events happen.
 *
 * Naming: one `reluwatch_` namespace, base units, counters end in `_total`;
 * every name here is listed in docs/metrics.md (a test keeps the two equal).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { LayerSummary, UnitState } from "../core/index.js";

/** What the exporter reads at scrape time. */
export interface DetectorView {
  summaries(): LayerSummary[];
  trackedUnits(): number;
}

export interface ExporterOptions {
  /** Export reluwatch_unit_firing_rate for the units closest to death. */
  unitSeries: boolean;
  /** Cap on reluwatch_unit_firing_rate series; the rest fold into unit="other" per layer. */
  unitSeriesMax: number;
  /** Also export prom-client's process and Node.js runtime metrics. */
  processMetrics?: boolean;
  /**
   * Every reason a snapshot can be dead-lettered for: their
   * reluwatch_invalid_snapshots_total series start at 0, so rate() sees the
   * first rejection (a series born at 1 shows no rate, and the alert would
   * wait for a second one).
   */
  rejectReasons?: readonly string[];
  /** The external_url setting: exported as reluwatch_explorer_info{url} so alerts can link to the explorer. */
  externalUrl?: string;
}

const SNAPSHOT_RESULTS = ["ok", "duplicate", "late", "invalid", "over_limit"] as const;
export type SnapshotResult = (typeof SNAPSHOT_RESULTS)[number];

const STATES: readonly UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];
const stateLabel = (s: UnitState): string => s.toLowerCase();
/** States a unit can die from: the `from` labels of the zero-initialised death series. */
const DEATH_SOURCES: readonly UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT"];

interface LayerValue {
  name: string;
  help: string;
  /** undefined: no series for this layer (e.g. dormancy when abs_sum is never sent). */
  value: (s: LayerSummary) => number | undefined;
}

/** One series per layer, read straight from its summary. */
const LAYER_GAUGES: readonly LayerValue[] = [
  {
    name: "reluwatch_layer_dead_ratio",
    help: "Share of a layer's units that are dead (0..1).",
    value: (s) => s.dead_ratio,
  },
  {
    name: "reluwatch_layer_born_dead_units",
    help: "Units whose first verdict was dead and that were never seen firing: an initialisation problem.",
    value: (s) => s.born_dead_units,
  },
  {
    name: "reluwatch_layer_constant_units",
    help: "Living units whose activation barely varies over the window (no information about the input).",
    value: (s) => s.constant_units,
  },
  { name: "reluwatch_layer_step", help: "Newest training step seen for the layer.", value: (s) => s.step },
  {
    name: "reluwatch_layer_window_samples",
    help: "Samples (inputs) in the layer's rolling window, summed over ranks.",
    value: (s) => s.window_samples,
  },
  {
    name: "reluwatch_layer_stale_ranks",
    help: "Ranks that stopped reporting while the others advance; verdicts lack their inputs.",
    value: (s) => s.stale_ranks,
  },
  {
    name: "reluwatch_layer_dormancy_mean",
    help: "Mean ReDo dormancy score of the layer's units (unit mean |activation| / layer mean); only when abs_sum is sent.",
    value: (s) => s.dormancy_mean ?? undefined,
  },
  {
    name: "reluwatch_layer_last_snapshot_timestamp_seconds",
    help: "Wall time the newest snapshot of the layer was applied (Unix seconds).",
    value: (s) => s.last_snapshot_ms / 1000,
  },
];

/** Cumulative per-layer counts, exposed from the layer's first scrape (at 0 until something happens). */
const LAYER_COUNTERS: readonly LayerValue[] = [
  {
    name: "reluwatch_layer_nonfinite_values_total",
    help: "NaN or infinite values seen in the layer: raw activations, FiringCounts nonfinite counts, and abs_sum/sq_sum entries (those snapshots keep their fires).",
    value: (s) => s.nonfinite_values_total,
  },
  {
    name: "reluwatch_layer_checkpoint_resumes_total",
    help: "Times the layer was resumed from a checkpoint (a newer incarnation at an earlier step, or without incarnations an earlier step at a later time); the window was cut back.",
    value: (s) => s.resumes_total,
  },
  {
    name: "reluwatch_layer_resets_total",
    help: "Times the layer's state was reset because its layer_units changed mid-run.",
    value: (s) => s.resets_total,
  },
];

export class Exporter {
  readonly registry = new Registry();
  private readonly snapshots: Counter<"result">;
  /**
   * Snapshots counted since the last read of reluwatch_snapshots_total, by
   * result: counting is one addition per snapshot, and the label sets are
   * hashed once per scrape instead of once per snapshot.
   */
  private readonly pendingSnapshots = new Map<SnapshotResult, number>(SNAPSHOT_RESULTS.map((r) => [r, 0]));
  private readonly invalid: Counter<"reason">;
  private readonly age: Histogram;
  private readonly lag: Gauge<"topic" | "partition">;
  private readonly restoring: Gauge;
  private readonly commitFailures: Counter<"guarantee">;

  constructor(
    private readonly view: DetectorView,
    private readonly options: ExporterOptions,
  ) {
    const registers = [this.registry];
    const layerLabels = ["run", "layer"] as const;
    // prom-client calls every collect() of one scrape in a single synchronous
    // pass; the summaries are computed once for that pass and forgotten in the
    // next microtask, so collect() stays linear in layers, not layers × metrics.
    let cached: LayerSummary[] | undefined;
    const scrape = (): LayerSummary[] => {
      if (cached === undefined) {
        cached = this.view.summaries();
        queueMicrotask(() => {
          cached = undefined;
        });
      }
      return cached;
    };

    new Gauge({
      name: "reluwatch_layer_units",
      help: "Units of a layer in each state (unknown, active, mostly_silent, dead).",
      labelNames: [...layerLabels, "state"],
      registers,
      collect() {
        this.reset();
        for (const s of scrape()) {
          for (const state of STATES) {
            this.set({ run: s.run_id, layer: s.layer, state: stateLabel(state) }, s.units_by_state[state]);
          }
        }
      },
    });
    for (const m of LAYER_GAUGES) this.layerGauge(m.name, m.help, scrape, m.value);
    for (const m of LAYER_COUNTERS) this.layerCounter(m.name, m.help, scrape, m.value);
    new Counter({
      name: "reluwatch_unit_transitions_total",
      help: "Units that changed state, by from and to state (to=dead is a death; from=dead a revival).",
      labelNames: [...layerLabels, "from", "to"],
      registers,
      collect() {
        this.reset();
        for (const s of scrape()) {
          // Deaths are exposed at 0 from a layer's first scrape: increase() cannot
          // see the first jump of a series that appears already non-zero, and a
          // layer whose units die in one verdict would never raise ReluUnitsDied.
          for (const from of DEATH_SOURCES) {
            this.inc({ run: s.run_id, layer: s.layer, from: stateLabel(from), to: "dead" }, 0);
          }
          for (const t of s.transitions_total) {
            this.inc(
              { run: s.run_id, layer: s.layer, from: stateLabel(t.from), to: stateLabel(t.to) },
              t.count,
            );
          }
        }
      },
    });
    new Gauge({
      name: "reluwatch_layer_units_by_firing_rate",
      // Not `le`: that label is reserved for histogram buckets (promtool rejects
      // it on a gauge); dashboards rename it with label_replace for heatmaps.
      help: "Units of a layer whose windowed firing rate is <= rate_le (cumulative), for heatmaps of the distribution.",
      labelNames: [...layerLabels, "rate_le"],
      registers,
      collect() {
        this.reset();
        for (const s of scrape()) {
          for (const b of s.firing_rate_le)
            this.set({ run: s.run_id, layer: s.layer, rate_le: String(b.le) }, b.units);
        }
      },
    });
    const externalUrl = this.options.externalUrl;
    if (externalUrl !== undefined) {
      new Gauge({
        name: "reluwatch_explorer_info",
        help: "1, labelled with the external_url this instance's unit explorer is reached at; alert annotations link through it.",
        labelNames: ["url"],
        registers,
      }).set({ url: externalUrl }, 1);
    }
    const unitSeries = this.options.unitSeries;
    const unitSeriesMax = this.options.unitSeriesMax;
    if (unitSeries) {
      new Gauge({
        name: "reluwatch_unit_firing_rate",
        help: 'Windowed firing rate of the living units closest to death (opt-in); past the cap, unit="other" holds the lowest folded rate per layer.',
        labelNames: [...layerLabels, "unit"],
        registers,
        collect() {
          this.reset();
          let budget = unitSeriesMax;
          for (const s of scrape()) {
            let folded: number | undefined;
            for (const u of s.closest_to_death) {
              if (budget > 0) {
                this.set({ run: s.run_id, layer: s.layer, unit: String(u.unit) }, u.firing_rate);
                budget--;
              } else {
                folded = Math.min(folded ?? Number.POSITIVE_INFINITY, u.firing_rate);
              }
            }
            if (folded !== undefined) this.set({ run: s.run_id, layer: s.layer, unit: "other" }, folded);
          }
        },
      });
    }

    const detectorView = this.view;
    new Gauge({
      name: "reluwatch_tracked_units",
      help: "Units whose windows this instance keeps, over all runs and layers.",
      registers,
      collect() {
        this.set(detectorView.trackedUnits());
      },
    });
    const pending = this.pendingSnapshots;
    this.snapshots = new Counter({
      name: "reluwatch_snapshots_total",
      help: "Snapshots processed, by result: ok, duplicate (already applied), late (older than the window), invalid, over_limit.",
      labelNames: ["result"],
      registers,
      collect() {
        for (const [result, count] of pending) {
          if (count === 0) continue;
          this.inc({ result }, count);
          pending.set(result, 0);
        }
      },
    });
    for (const result of SNAPSHOT_RESULTS) this.snapshots.inc({ result }, 0);
    this.invalid = new Counter({
      name: "reluwatch_invalid_snapshots_total",
      help: "Snapshots dead-lettered, by reason (an error code of docs/errors.md or a limit).",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of this.options.rejectReasons ?? []) this.invalid.inc({ reason }, 0);
    this.age = new Histogram({
      name: "reluwatch_snapshot_age_seconds",
      help: "Processing time minus the snapshot's time: how far behind training the verdicts are.",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.lag = new Gauge({
      name: "reluwatch_consumer_lag_messages",
      help: "Messages between the partition's high watermark and the consumer's position.",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.restoring = new Gauge({
      name: "reluwatch_restoring",
      help: "1 while the instance rebuilds windows of newly assigned partitions (not ready), else 0.",
      registers,
    });
    this.restoring.set(0);
    this.commitFailures = new Counter({
      name: "reluwatch_commit_failures_total",
      help: "Commits (effects, state, offsets) that failed, by processing_guarantee; each plans its partitions again from the state topic.",
      labelNames: ["guarantee"],
      registers,
    });
    for (const guarantee of ["at_least_once", "exactly_once"]) this.commitFailures.inc({ guarantee }, 0);
    if (this.options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  private layerGauge(
    name: string,
    help: string,
    scrape: () => LayerSummary[],
    value: (s: LayerSummary) => number | undefined,
  ): void {
    new Gauge({
      name,
      help,
      labelNames: ["run", "layer"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of scrape()) {
          const v = value(s);
          if (v !== undefined) this.set({ run: s.run_id, layer: s.layer }, v);
        }
      },
    });
  }

  private layerCounter(
    name: string,
    help: string,
    scrape: () => LayerSummary[],
    value: LayerValue["value"],
  ): void {
    new Counter({
      name,
      help,
      labelNames: ["run", "layer"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of scrape()) this.inc({ run: s.run_id, layer: s.layer }, value(s) ?? 0);
      },
    });
  }

  countSnapshot(result: SnapshotResult, count = 1): void {
    this.pendingSnapshots.set(result, this.pendingSnapshots.get(result)! + count);
  }

  /** Snapshots counted so far, by result. */
  async snapshotCounts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of (await this.snapshots.get()).values) out[String(v.labels.result)] = v.value;
    return out;
  }

  countRejected(result: "invalid" | "over_limit", reason: string): void {
    this.countSnapshot(result);
    this.invalid.inc({ reason });
  }

  observeAge(seconds: number): void {
    this.age.observe(Math.max(0, seconds));
  }

  setLag(topic: string, partition: number, messages: number): void {
    this.lag.set({ topic, partition: String(partition) }, messages);
  }

  dropLag(topic: string, partition: number): void {
    this.lag.remove({ topic, partition: String(partition) });
  }

  commitFailed(guarantee: "at_least_once" | "exactly_once"): void {
    this.commitFailures.inc({ guarantee });
  }

  setRestoring(on: boolean): void {
    this.restoring.set(on ? 1 : 0);
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
