/**
 * The exporter's /metrics against what the kit and the docs promise: a real
 * Exporter over a real Detector fed with simulated and hand-made snapshots.
 * Fails when a family appears that docs/metrics.md does not list (or the other
 * way round), when the contract in deploy/metrics-contract.ts drifts from the
 * exporter, when the zero-initialised series the alerts depend on are missing,
 * and when the whole page differs from test/fixtures/metrics.golden.prom.
 *
 * Regenerate the golden file after an intended change with
 * `make metrics-golden` (UPDATE_GOLDEN=1 on this test) and review the diff.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { METRICS, ZERO_INITIALISED_SERIES } from "../../../deploy/metrics-contract.js";
import { type ActivationSnapshot, Detector } from "../../../src/core/index.js";
import { packageRoot } from "../../../src/paths.js";
import { REJECT_REASONS } from "../../../src/service/snapshot-processor.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { Exporter } from "../../../src/sink/prometheus.js";
import { repoFile } from "../../support/deploy-files.js";
import { familyNames, parseExposition, sumOf } from "../../support/metrics.js";
import { promtoolCheckMetrics } from "../../support/prometheus.js";

const GOLDEN = "test/fixtures/metrics.golden.prom";
const HAND_RUN = "hand-made";
const HAND_LAYER = "probe.extra";
const T0 = Date.UTC(2026, 0, 1);

function counts(base: Omit<ActivationSnapshot, "stats">, fires: number[]): ActivationSnapshot {
  return { ...base, stats: { kind: "counts", fires: Uint32Array.from(fires), abs_sum: null, sq_sum: null } };
}

/** One layer that meets the rarer events: a checkpoint resume, a layer_units reset, NaN and ±Inf values. */
function handMadeSnapshots(): ActivationSnapshot[] {
  const base = (step: number, layerUnits: number) => ({
    run_id: HAND_RUN,
    layer: HAND_LAYER,
    rank: 0,
    step,
    time: T0 + step * 1000,
    unit_offset: 0,
    unit_count: layerUnits,
    layer_units: layerUnits,
    samples: 2,
  });
  const raw = new Float32Array([1, Number.NaN, 0, 2, Number.POSITIVE_INFINITY, 0.5, 0, 1]);
  return [
    counts(base(0, 3), [1, 0, 2]),
    counts(base(100, 3), [2, 0, 1]),
    // Step 50 again, later in time: the rank resumed from a checkpoint.
    counts({ ...base(50, 3), time: T0 + 200_000 }, [1, 1, 1]),
    // The layer grew to 4 units: its state starts over.
    { ...base(300, 4), stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(raw.buffer) } },
  ];
}

/**
 * A deterministic exporter state that gives every family samples: a simulated
 * run where half of one layer dies and a rank goes stale, abs_sum sent
 * (dormancy), the hand-made layer, and pipeline counters driven the way the
 * consumer drives them.
 */
function deterministicExporter(): { exporter: Exporter; detector: Detector } {
  const detector = new Detector({ window_steps: 400, window_buckets: 4 });
  const exporter = new Exporter(detector, {
    unitSeries: true,
    unitSeriesMax: 3,
    processMetrics: false,
    rejectReasons: REJECT_REASONS,
    externalUrl: "https://reluwatch.example.com",
  });
  const scenario = resolveScenario("lr-spike", {
    units: 8,
    layers: 2,
    ranks: 2,
    steps: 1200,
    samples: 2048,
    sums: true,
    deaths: [{ layer: 1, fraction: 0.5, step: 300 }],
    stale_ranks: [{ rank: 1, after_step: 700 }],
  });
  for (const s of [...generateFleet(scenario), ...handMadeSnapshots()]) {
    // Applied 1.5 s after the trainer took it: a fixed age, so the histogram is stable.
    const outcome = detector.apply(s, s.time + 1500);
    exporter.countSnapshot(outcome.result);
    if (outcome.result === "ok") exporter.observeAge(1.5);
  }
  exporter.countRejected("invalid", "bad_magic");
  exporter.countRejected("over_limit", "limit_tracked_units");
  exporter.setLag("reluwatch.snapshots", 0, 12);
  exporter.setLag("reluwatch.snapshots", 1, 0);
  exporter.setRestoring(false);
  return { exporter, detector };
}

/** Rows of the markdown tables in docs/metrics.md: name → type and labels. */
function documentedMetrics(): Map<string, { type: string; labels: string[] }> {
  const rows = new Map<string, { type: string; labels: string[] }>();
  for (const m of repoFile("docs/metrics.md").matchAll(/^\| `([^`]+)` \|([^|]+)\|([^|]*)\|/gm)) {
    const labels = m[3]!
      .replace(/[()]/g, "")
      .split(",")
      .map((l) => l.trim())
      .filter(Boolean);
    rows.set(m[1]!, { type: m[2]!.trim(), labels });
  }
  return rows;
}

/** Family name → (type, label names seen on its samples, help) as exposed. */
function exposedFamilies(text: string): Map<string, { type: string; labels: string[]; help: string }> {
  const families = new Map<string, { type: string; labels: Set<string>; help: string }>();
  for (const m of text.matchAll(/^# HELP (\S+) (.*)\n# TYPE \S+ (\S+)$/gm)) {
    families.set(m[1]!, { help: m[2]!, type: m[3]!, labels: new Set() });
  }
  for (const s of parseExposition(text)) {
    const family =
      families.get(s.name) ?? families.get(s.name.replace(/_(bucket|sum|count)$/, "")) ?? undefined;
    assert.ok(family, `sample ${s.name} belongs to no announced family`);
    for (const l of Object.keys(s.labels)) family.labels.add(l);
  }
  return new Map(
    [...families].map(([name, f]) => {
      const labels = [...f.labels].filter((l) => !(f.type === "histogram" && l === "le"));
      return [name, { type: f.type, help: f.help, labels }];
    }),
  );
}

describe("the exporter's /metrics", () => {
  it("exposes exactly the families docs/metrics.md lists, with the documented types and labels", async () => {
    const { exporter } = deterministicExporter();
    const exposed = exposedFamilies(await exporter.metrics());
    const documented = documentedMetrics();
    const undocumented = [...exposed.keys()].filter((n) => !documented.has(n));
    const missing = [...documented.keys()].filter((n) => !exposed.has(n));
    assert.deepEqual(undocumented, [], "exposed but not in docs/metrics.md");
    assert.deepEqual(missing, [], "in docs/metrics.md but not exposed");
    for (const [name, family] of exposed) {
      const doc = documented.get(name)!;
      assert.equal(doc.type, family.type, `${name}: type`);
      const docLabels = family.type === "histogram" ? [] : doc.labels;
      assert.deepEqual([...docLabels].sort(), [...family.labels].sort(), `${name}: labels`);
    }
  });

  it("matches deploy/metrics-contract.ts: names, types, labels and help, opt-in only when asked", async () => {
    const { exporter } = deterministicExporter();
    const exposed = exposedFamilies(await exporter.metrics());
    assert.deepEqual([...exposed.keys()].sort(), METRICS.map((m) => m.name).sort());
    for (const m of METRICS) {
      const family = exposed.get(m.name)!;
      assert.equal(family.type, m.type, `${m.name}: type`);
      assert.deepEqual([...family.labels].sort(), [...m.labels].sort(), `${m.name}: labels`);
      assert.equal(family.help, m.help, `${m.name}: help`);
    }

    const byDefault = new Exporter(new Detector(), { unitSeries: false, unitSeriesMax: 10 });
    const names = familyNames(await byDefault.metrics());
    for (const m of METRICS) assert.equal(names.has(m.name), !m.optIn, `${m.name} present by default`);
    assert.ok(
      [...names].some((n) => n.startsWith("process_")),
      "process metrics are on by default",
    );
  });

  it("exposes the zero-initialised series at 0 from a layer's first snapshot, before any verdict", async () => {
    const detector = new Detector();
    const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 10, processMetrics: false });
    const [first] = handMadeSnapshots();
    detector.apply(first!, first!.time);
    const samples = parseExposition(await exporter.metrics());
    const layer = { run: HAND_RUN, layer: HAND_LAYER };
    for (const z of ZERO_INITIALISED_SERIES) {
      const match = { ...layer, ...z.labels };
      const found = samples.filter(
        (s) => s.name === z.name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
      );
      assert.equal(found.length, 1, `${z.name}${JSON.stringify(z.labels)} exposed once`);
      assert.equal(found[0]!.value, 0, `${z.name}${JSON.stringify(z.labels)} at 0`);
    }
    // Before a verdict no other transition pair exists.
    assert.equal(sumOf(samples, "reluwatch_unit_transitions_total", { to: "active" }), 0);
    assert.equal(
      samples.filter((s) => s.name === "reluwatch_unit_transitions_total" && s.labels.to !== "dead").length,
      0,
    );
  });

  it("exposes every dead-letter reason at 0 before the first rejection", async () => {
    const exporter = new Exporter(new Detector(), {
      unitSeries: false,
      unitSeriesMax: 10,
      processMetrics: false,
      rejectReasons: REJECT_REASONS,
    });
    const invalid = () => parseExposition(text).filter((s) => s.name === "reluwatch_invalid_snapshots_total");
    let text = await exporter.metrics();
    assert.deepEqual(
      invalid()
        .map((s) => s.labels.reason)
        .sort(),
      [...REJECT_REASONS].sort(),
    );
    assert.ok(invalid().every((s) => s.value === 0));
    assert.ok(REJECT_REASONS.includes("bad_magic") && REJECT_REASONS.includes("limit_tracked_units"));
    exporter.countRejected("invalid", "bad_magic");
    text = await exporter.metrics();
    assert.equal(sumOf(invalid(), "reluwatch_invalid_snapshots_total", { reason: "bad_magic" }), 1);
    assert.equal(sumOf(invalid(), "reluwatch_invalid_snapshots_total"), 1);
  });

  it("counts what the detector saw in the deterministic state", async () => {
    const { exporter, detector } = deterministicExporter();
    const samples = parseExposition(await exporter.metrics());
    const hand = { run: HAND_RUN, layer: HAND_LAYER };
    assert.equal(sumOf(samples, "reluwatch_layer_checkpoint_resumes_total", hand), 1);
    assert.equal(sumOf(samples, "reluwatch_layer_resets_total", hand), 1);
    assert.equal(sumOf(samples, "reluwatch_layer_nonfinite_values_total", hand), 2);
    let deaths = 0;
    for (const s of detector.summaries()) deaths += s.deaths_total;
    assert.ok(deaths > 0, "the scenario kills units");
    assert.equal(sumOf(samples, "reluwatch_unit_transitions_total", { to: "dead" }), deaths);
  });

  it("is byte for byte test/fixtures/metrics.golden.prom, which promtool accepts", async () => {
    const text = await deterministicExporter().exporter.metrics();
    const path = join(packageRoot, GOLDEN);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, text);
    assert.equal(text, readFileSync(path, "utf8"), `${GOLDEN} is stale: run \`make metrics-golden\``);
    const check = promtoolCheckMetrics(text);
    assert.equal(check.status, 0, `promtool check metrics:\n${check.output}`);
  });
});
