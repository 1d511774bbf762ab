/**
 * Turns the consumer's per-unit transition events into what a person reads
 * while the demo runs: one line per layer per classification step, in plain
 * words, and a summary table at the end. Pure: events in, lines out. It shows
 * what the events topic carries: with the default `events: deaths`, deaths,
 * revivals and born-dead units; with `events: all`, every first verdict too.
 */
import type { LayerSummary, UnitState, UnitTransition } from "../core/index.js";
import { countUnits, type DeadUnits } from "./ground-truth.js";

const WORDS: Record<UnitState, string> = {
  UNKNOWN: "unknown",
  ACTIVE: "active",
  MOSTLY_SILENT: "mostly-silent",
  DEAD: "dead",
};

const LIVING: readonly UnitState[] = ["ACTIVE", "MOSTLY_SILENT"];

interface Group {
  layer: string;
  step: number;
  events: UnitTransition[];
  /** A line about the run itself (the spike), printed in step order among the verdicts. */
  note?: string;
}

export interface ReportOptions {
  /** 1 − alpha of the detector, shown with every death. */
  confidence: number;
  /** Units of a layer, when known (transition events do not carry it). */
  layerUnits: (layer: string) => number | undefined;
}

/** Collects one run's transitions; `drain()` returns the lines of every group collected so far. */
export class TransitionReport {
  private readonly states = new Map<string, Map<number, UnitState>>();
  private pending: Group[] = [];
  /** Deaths (living → dead) printed so far. */
  deathLines = 0;
  deaths = 0;

  constructor(private readonly options: ReportOptions) {}

  /** Events added so far. */
  received = 0;
  private newestStep = -1;

  add(t: UnitTransition): void {
    this.received++;
    this.newestStep = Math.max(this.newestStep, t.step);
    const last = this.pending.findLast(
      (g) => g.note === undefined && g.layer === t.layer && g.step === t.step,
    );
    if (last) last.events.push(t);
    else this.pending.push({ layer: t.layer, step: t.step, events: [t] });
  }

  /**
   * A line about the training run at `step`. Verdicts about earlier steps
   * arrive later than the trainer gets there (a bucket is judged when the next
   * one starts), so notes wait to be drained in step order with them.
   */
  note(step: number, text: string): void {
    this.pending.push({ layer: "", step, events: [], note: `step ${String(step).padStart(5)}  ${text}` });
  }

  /** Units of a layer whose latest drained event put them in `state`. */
  count(layer: string, state: UnitState): number {
    let n = 0;
    for (const s of this.states.get(layer)?.values() ?? []) if (s === state) n++;
    return n;
  }

  /**
   * Lines of everything added since the last drain, in step order. A note
   * waits until a verdict at or after its step has arrived, unless `all`.
   */
  drain(all = false): string[] {
    const ready = this.pending.filter((g) => g.note === undefined || all || g.step <= this.newestStep);
    this.pending = this.pending.filter((g) => !ready.includes(g));
    ready.sort((a, b) => a.step - b.step || a.layer.localeCompare(b.layer));
    return ready.flatMap((g) => (g.note !== undefined ? [g.note] : this.describe(g)));
  }

  private describe(g: Group): string[] {
    // States are advanced group by group, so each line's "n/units dead" is as of its own step.
    let states = this.states.get(g.layer);
    if (states === undefined) {
      states = new Map();
      this.states.set(g.layer, states);
    }
    for (const t of g.events) states.set(t.unit, t.to);
    const head = `step ${String(g.step).padStart(5)}  ${g.layer}:`;
    const lines: string[] = [];
    const first = g.events.filter((t) => t.from === "UNKNOWN");
    const died = g.events.filter((t) => t.to === "DEAD" && LIVING.includes(t.from));
    const revived = g.events.filter((t) => t.from === "DEAD" && LIVING.includes(t.to));
    const units = this.options.layerUnits(g.layer);
    const dead = `${this.count(g.layer, "DEAD")}/${units ?? "?"} dead`;
    if (first.length > 0 && first.every((t) => t.to === "DEAD")) {
      // What the default `events: deaths` shows of a new layer: first verdicts of living units are no events.
      const born = first.filter((t) => t.born_dead).length;
      const what = born === first.length ? "born dead" : `dead at their first verdict (${born} born dead)`;
      lines.push(`${head} ${first.length} unit${first.length === 1 ? "" : "s"} ${what}; ${dead}`);
    } else if (first.length > 0) {
      const by = tally(first, (t) => t.to);
      const born = first.filter((t) => t.born_dead).length;
      const parts = (["ACTIVE", "MOSTLY_SILENT", "DEAD"] as const)
        .filter((s) => by.has(s))
        .map((s) => `${by.get(s)} ${WORDS[s]}`);
      lines.push(
        `${head} first verdicts for ${first.length} units: ${parts.join(", ")}${born > 0 ? ` (${born} born dead)` : ""}`,
      );
    }
    if (died.length > 0) {
      this.deathLines++;
      this.deaths += died.length;
      const how = [...tally(died, (t) => t.from)]
        .map(([from, n]) => (died.length === n ? `${WORDS[from]} → dead` : `${n} ${WORDS[from]} → dead`))
        .join(", ");
      const confidence = formatPercent(this.options.confidence);
      lines.push(
        `${head} ${died.length} unit${died.length === 1 ? "" : "s"} died (${how}); ${dead}, confidence ${confidence}`,
      );
    }
    if (revived.length > 0) {
      const how = [...tally(revived, (t) => t.to)].map(([to, n]) => `${n} dead → ${WORDS[to]}`).join(", ");
      lines.push(
        `${head} ${revived.length} unit${revived.length === 1 ? "" : "s"} revived (${how}); ${dead}`,
      );
    }
    return lines;
  }
}

function tally<K>(events: UnitTransition[], key: (t: UnitTransition) => K): Map<K, number> {
  const m = new Map<K, number>();
  for (const t of events) m.set(key(t), (m.get(key(t)) ?? 0) + 1);
  return m;
}

export function formatPercent(share: number): string {
  const pct = share * 100;
  // Enough digits to tell 99.9% from 99.99%, none wasted on round numbers.
  const text = pct.toFixed(pct >= 99 ? 3 : 1).replace(/\.?0+$/, "");
  return `${text}%`;
}

/** The end-of-run table: units per state, deaths and born-dead per layer, and the whole-dataset truth when known. */
export function formatSummaryTable(summaries: readonly LayerSummary[], truth?: DeadUnits): string {
  const header = ["layer", "units", "active", "mostly-silent", "dead", "unknown", "deaths", "born dead"];
  if (truth) header.push("truly dead");
  const rows = [...summaries]
    .sort((a, b) => a.layer.localeCompare(b.layer))
    .map((s) => {
      const row = [
        s.layer,
        s.layer_units,
        s.units_by_state.ACTIVE,
        s.units_by_state.MOSTLY_SILENT,
        s.units_by_state.DEAD,
        s.units_by_state.UNKNOWN,
        s.deaths_total,
        s.born_dead_units,
      ].map(String);
      if (truth) row.push(String(truth.get(s.layer)?.size ?? 0));
      return row;
    });
  const total = ["total", ...header.slice(1).map((_, i) => sumColumn(rows, i + 1))];
  if (truth) total[total.length - 1] = String(countUnits(truth));
  const all = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line), rule, line(total)].join("\n");
}

function sumColumn(rows: string[][], i: number): string {
  return String(rows.reduce((a, r) => a + Number(r[i]), 0));
}
