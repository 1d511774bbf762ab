import assert from "node:assert/strict";
import { test } from "node:test";
import type { LayerSummary, UnitState, UnitTransition } from "../../../src/core/index.js";
import { formatPercent, formatSummaryTable, TransitionReport } from "../../../src/demo/transition-report.js";

function t(
  layer: string,
  unit: number,
  from: UnitState,
  to: UnitState,
  step: number,
  born = false,
): UnitTransition {
  return {
    run_id: "r",
    layer,
    unit,
    from,
    to,
    born_dead: born,
    step,
    time: 0,
    fires: 0,
    samples: 0,
    firing_rate: 0,
    rate_upper_bound: 0,
    last_fire_step: null,
  };
}

test("first verdicts are one line per layer and step; deaths say how many, from what, and the layer's dead count then", () => {
  const report = new TransitionReport({ confidence: 0.999, layerUnits: () => 8 });
  for (let u = 0; u < 5; u++) report.add(t("dense_0", u, "UNKNOWN", "ACTIVE", 300));
  report.add(t("dense_0", 5, "UNKNOWN", "MOSTLY_SILENT", 300));
  report.add(t("dense_0", 6, "UNKNOWN", "DEAD", 300, true));
  report.add(t("dense_0", 7, "UNKNOWN", "DEAD", 300, true));
  // Drained together, a later step's events do not leak into an earlier step's count.
  report.add(t("dense_0", 0, "ACTIVE", "DEAD", 1200));
  report.add(t("dense_0", 5, "MOSTLY_SILENT", "DEAD", 1200));
  report.add(t("dense_0", 1, "ACTIVE", "DEAD", 1300));
  report.add(t("dense_0", 2, "ACTIVE", "MOSTLY_SILENT", 1300));
  assert.deepEqual(report.drain(), [
    "step   300  dense_0: first verdicts for 8 units: 5 active, 1 mostly-silent, 2 dead (2 born dead)",
    "step  1200  dense_0: 2 units died (1 active → dead, 1 mostly-silent → dead); 4/8 dead, confidence 99.9%",
    "step  1300  dense_0: 1 unit died (active → dead); 5/8 dead, confidence 99.9%",
  ]);
  assert.deepEqual([report.deathLines, report.deaths, report.received], [2, 3, 12]);
  report.note(1500, "learning-rate spike ×100");
  report.add(t("dense_0", 1, "DEAD", "MOSTLY_SILENT", 1400));
  assert.deepEqual(report.drain(), [
    "step  1400  dense_0: 1 unit revived (1 dead → mostly-silent); 4/8 dead",
  ]);
  // The note waits for the verdicts about the steps before it, then comes in step order.
  report.add(t("dense_0", 3, "ACTIVE", "DEAD", 1600));
  assert.deepEqual(report.drain(), [
    "step  1500  learning-rate spike ×100",
    "step  1600  dense_0: 1 unit died (active → dead); 5/8 dead, confidence 99.9%",
  ]);
  report.note(1700, "end");
  assert.deepEqual(report.drain(), []);
  assert.deepEqual(report.drain(true), ["step  1700  end"]);
});

test("with events: deaths a new layer shows only its born-dead units, and the dead count stays right", () => {
  const report = new TransitionReport({ confidence: 0.999, layerUnits: () => 8 });
  report.add(t("dense_0", 6, "UNKNOWN", "DEAD", 300, true));
  report.add(t("dense_0", 7, "UNKNOWN", "DEAD", 300, true));
  report.add(t("dense_1", 0, "UNKNOWN", "DEAD", 300, true));
  report.add(t("dense_0", 0, "ACTIVE", "DEAD", 1200));
  assert.deepEqual(report.drain(), [
    "step   300  dense_0: 2 units born dead; 2/8 dead",
    "step   300  dense_1: 1 unit born dead; 1/8 dead",
    "step  1200  dense_0: 1 unit died (active → dead); 3/8 dead, confidence 99.9%",
  ]);
});

test("confidence reads as a percentage without wasted digits", () => {
  assert.deepEqual([0.999, 0.9999, 0.95, 1, 0.001].map(formatPercent), [
    "99.9%",
    "99.99%",
    "95%",
    "100%",
    "0.1%",
  ]);
});

test("the summary table has a row per layer and totals", () => {
  const layer = (name: string, active: number, dead: number, deaths: number): LayerSummary =>
    ({
      run_id: "r",
      layer: name,
      layer_units: 10,
      units_by_state: { UNKNOWN: 0, ACTIVE: active, MOSTLY_SILENT: 10 - active - dead, DEAD: dead },
      deaths_total: deaths,
      born_dead_units: dead - deaths,
    }) as LayerSummary;
  const table = formatSummaryTable(
    [layer("dense_1", 6, 3, 2), layer("dense_0", 9, 1, 1)],
    new Map([
      ["dense_0", new Set([1])],
      ["dense_1", new Set([1, 2, 3, 4])],
    ]),
  );
  const lines = table.split("\n");
  assert.equal(lines.length, 6);
  assert.deepEqual(lines[0]!.split(/ {2,}/), [
    "layer",
    "units",
    "active",
    "mostly-silent",
    "dead",
    "unknown",
    "deaths",
    "born dead",
    "truly dead",
  ]);
  assert.deepEqual(lines[2]!.trim().split(/ +/), ["dense_0", "10", "9", "0", "1", "0", "1", "0", "1"]);
  assert.deepEqual(lines[3]!.trim().split(/ +/), ["dense_1", "10", "6", "1", "3", "0", "2", "1", "4"]);
  assert.deepEqual(lines[5]!.trim().split(/ +/), ["total", "20", "15", "1", "4", "0", "3", "1", "5"]);
});
