/**
 * The scale model: from the per-core figures `make bench` measured
 * (docs/benchmarks.json), what a fleet needs. `npx tsx bench/scale-model.ts
 * [docs/benchmarks.json]` rewrites docs/scaling.md; bench/run.ts calls it after
 * every run, so the document always matches the numbers beside it.
 *
 * Workload: every GPU is a data-parallel rank that publishes one counts
 * snapshot per MLP layer every `interval` steps. Sizes are computed by encoding
 * a simulated snapshot of the model's layer width, not estimated.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { constants, zstdCompressSync } from "node:zlib";
import { encodeSnapshot } from "../src/codec/index.js";
import { DEFAULT_KAFKA_CLIENT } from "../src/config/index.js";
import type { ActivationSnapshot } from "../src/core/snapshot.js";
import { generateFleet, resolveScenario } from "../src/sim/index.js";
import { ZSTD_LEVEL } from "../src/source/kafka-zstd.js";

export interface Workload {
  gpus: number;
  layers: number;
  units: number;
  steps_per_s: number;
  interval_steps: number;
  /** GPUs per training run: the whole fleet in one job, or many jobs of this size. */
  gpus_per_run: number;
  /**
   * Data-parallel ranks whose counts are summed before one of them publishes (the Python SDK's
   * ReluProbe with a process_group); 1 when every rank publishes its own. Default 1.
   */
  reduce_group?: number;
}

/** The measured inputs, as bench/run.ts stores them in docs/benchmarks.json. */
export interface MeasuredInputs {
  /**
   * Per-core throughput of the service: unit-updates per CPU-second, end to end (fetch, decompress,
   * decode, apply, events, commits); the lower of one instance's steady state and two instances'
   * figure while both consumed, when the scale-out measured one.
   */
  service_unit_updates_per_cpu_s: number;
  /** Where service_unit_updates_per_cpu_s came from. */
  service_cost_source: string;
  /** The client the service fetched with in those runs. */
  service_client: string;
  /** Scale-out on the bench machine, when measured: 2 instances while both consumed / 1 instance. */
  scale_out?: {
    /** null when both consumed together too briefly for the ratio to count (bench/e2e.ts MIN_OVERLAP_S). */
    ratio: number | null;
    overlap_s: number;
    one_per_cpu_s: number;
    two_per_cpu_s: number;
    cores: number;
  };
  /** Bytes of detector state per tracked unit (core bench, 1M units, with abs/sq sums: what both SDKs send by default). */
  bytes_per_unit: number;
  /** RSS of an idle service (runtime, clients, buffers), MB. */
  base_rss_mb: number;
  /** Prometheus series per layer, counted on a live scrape, and the per-instance rest. */
  series_per_layer: number;
  series_per_instance: number;
  /** Publisher CPU µs per 4096-unit snapshot with zstd, the publishers' default. */
  publisher_cpu_us_per_4096_snapshot: number;
}

/** Planning assumptions that are not measured here; named so that they can be argued with. */
export const ASSUMPTIONS = {
  /** Run consumers at half their measured maximum, the rate at which latency was measured. */
  cpu_utilisation: 0.5,
  /** Sustained produce throughput of one broker, compressed MB/s, replication factor 3. */
  broker_mb_per_s: 100,
  /** MB/s one partition should carry, so that a consumer instance can take it whole. */
  partition_mb_per_s: 10,
  /** Active series a single Prometheus server holds comfortably. */
  prometheus_series: 2_000_000,
};

export interface FleetPlan {
  workload: Workload;
  runs: number;
  messages_per_s: number;
  snapshot_bytes: number;
  wire_mb_per_s: number;
  raw_mb_per_s: number;
  unit_updates_per_s: number;
  consumer_cores: number;
  instances: number;
  partitions: number;
  distinct_keys: number;
  units_tracked: number;
  memory_per_instance_mb: number;
  memory_total_gb: number;
  brokers: number;
  series: number;
  publisher_cpu_share_per_gpu: number;
  /** Load on one unit of each resource that cannot be split further, as a share of it. */
  pressure: { key_core: number; broker: number; prometheus: number };
  bottleneck: string;
}

function snapshotSizes(units: number): { raw: number; zstd: number } {
  const s = generateFleet(resolveScenario("healthy", { ranks: 1, layers: 1, units, steps: 1 })).next()
    .value as ActivationSnapshot;
  const raw = encodeSnapshot(s);
  return {
    raw: raw.length,
    zstd: zstdCompressSync(raw, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } }).length,
  };
}

export function plan(w: Workload, m: MeasuredInputs): FleetPlan {
  const size = snapshotSizes(w.units);
  const runs = Math.max(1, Math.ceil(w.gpus / w.gpus_per_run));
  const publishers = w.gpus / Math.min(w.reduce_group ?? 1, w.gpus_per_run);
  const messages = (publishers * w.layers * w.steps_per_s) / w.interval_steps;
  const updates = messages * w.units;
  const cores = updates / (m.service_unit_updates_per_cpu_s * ASSUMPTIONS.cpu_utilisation);
  const keys = runs * w.layers; // snapshots are keyed by (run, layer): no more partitions can be busy
  const instances = Math.min(keys, Math.max(1, Math.ceil(cores)));
  const wire = (messages * size.zstd) / 1e6;
  const partitions = Math.min(
    keys,
    Math.max(2 * instances, Math.ceil(wire / ASSUMPTIONS.partition_mb_per_s), 1),
  );
  const unitsTracked = runs * w.layers * w.units;
  const perInstanceUnits = unitsTracked / instances;
  const memPerInstance = m.base_rss_mb + (perInstanceUnits * m.bytes_per_unit) / 2 ** 20;
  const brokers = Math.max(1, Math.ceil(wire / ASSUMPTIONS.broker_mb_per_s));
  const series = runs * w.layers * m.series_per_layer + instances * m.series_per_instance;
  const publisherShare =
    ((w.layers * w.steps_per_s) / w.interval_steps) *
    m.publisher_cpu_us_per_4096_snapshot *
    (w.units / 4096) *
    1e-6;

  // Where it binds first. A (run, layer) key's stream is consumed by one instance on one core, and
  // cannot be split; brokers and instances can be added, one Prometheus server holds only so much.
  const keyCores = ((messages / keys) * w.units) / m.service_unit_updates_per_cpu_s;
  const pressure = {
    key_core: keyCores / ASSUMPTIONS.cpu_utilisation,
    broker: wire / ASSUMPTIONS.broker_mb_per_s,
    prometheus: series / ASSUMPTIONS.prometheus_series,
  };
  const names: Record<keyof typeof pressure, string> = {
    key_core: "consumer core per (run, layer) key",
    broker: "broker ingress",
    prometheus: "Prometheus series",
  };
  const top = (Object.keys(pressure) as Array<keyof typeof pressure>).sort(
    (a, b) => pressure[b] - pressure[a],
  )[0]!;
  return {
    workload: w,
    runs,
    messages_per_s: messages,
    snapshot_bytes: size.raw,
    wire_mb_per_s: wire,
    raw_mb_per_s: (messages * size.raw) / 1e6,
    unit_updates_per_s: updates,
    consumer_cores: cores,
    instances,
    partitions,
    distinct_keys: keys,
    units_tracked: unitsTracked,
    memory_per_instance_mb: memPerInstance,
    memory_total_gb: (memPerInstance * instances) / 1024,
    brokers,
    series,
    publisher_cpu_share_per_gpu: publisherShare,
    pressure,
    // A key past one core is a hard limit (more instances or brokers do not help), so it comes first.
    bottleneck:
      pressure.key_core >= 1
        ? `${names.key_core}: a layer's stream needs more than one core`
        : top === "broker"
          ? `${names.broker} (${brokers} broker${brokers > 1 ? "s" : ""})`
          : names[top],
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the JSON file written by bench/run.ts
export function inputsFrom(bench: any): MeasuredInputs {
  const units = bench.e2e.scenario.units as number;
  const client: string = bench.e2e.service_client ?? "kafkajs";
  // Results stored before the service ran once per client have one "service" run.
  const service = bench.e2e.throughput[`service-${client}`] ?? bench.e2e.throughput.service;
  const one = service.steady_snapshots_per_cpu_s.median as number;
  const so = bench.e2e.scale_out;
  const scaleOut =
    so?.runs && Number.isFinite(so.overlap_snapshots_per_cpu_s.median)
      ? {
          ratio: (so.ratio_to_one_instance.median as number | null) ?? null,
          overlap_s: so.overlap_s.median as number,
          one_per_cpu_s: so.one_instance_snapshots_per_cpu_s.median as number,
          two_per_cpu_s: so.overlap_snapshots_per_cpu_s.median as number,
          cores: bench.machine.cores as number,
        }
      : undefined;
  const two = scaleOut?.two_per_cpu_s ?? Number.POSITIVE_INFINITY;
  return {
    service_unit_updates_per_cpu_s: Math.min(one, two) * units,
    service_cost_source:
      two < one
        ? "e2e scale-out: two instances while both consumed, snapshots per CPU-second of both × units (below one instance's steady state: the lower is used)"
        : "e2e: one service instance in the steady state, snapshots per CPU-second × units",
    service_client: service.client_used ?? "kafkajs",
    ...(scaleOut ? { scale_out: scaleOut } : {}),
    // Stored results from before the with-sums figure existed fall back to the figure without sums.
    bytes_per_unit: (bench.core.bytes_per_unit_1m_with_sums ?? bench.core.bytes_per_unit_1m).median,
    base_rss_mb: bench.e2e.soak.rss_mb.warm,
    series_per_layer: bench.e2e.series.per_layer,
    series_per_instance: bench.e2e.series.other,
    publisher_cpu_us_per_4096_snapshot: publisherZstd(bench.e2e.publisher).cpu_us_per_snapshot.median,
  };
}

/**
 * The default publisher's zstd round (gzip where a round predates zstd): per client since the round
 * measured both, the client the publisher uses by default; before that, one unnamed client.
 */
// biome-ignore lint/suspicious/noExplicitAny: the stored JSON of a bench run, as inputsFrom takes it
function publisherZstd(publisher: any): any {
  const rounds = publisher.clients?.[DEFAULT_KAFKA_CLIENT] ?? publisher;
  return rounds.zstd ?? rounds.gzip;
}

const FLEETS = [64, 1024, 16_384];
const MODEL = { layers: 96, units: 16_384, steps_per_s: 2, interval_steps: 100 };
/** Data-parallel ranks summed into one publisher in the reduced-fleet table. */
const REDUCE_GROUP = 64;

const n = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const pct = (x: number) => `${n(x * 100, x < 0.1 ? 1 : 0)}%`;

export function renderScaling(bench: unknown, source: string): string {
  const m = inputsFrom(bench);
  const table = (gpusPerRun: (g: number) => number, title: string, reduceGroup = 1) => {
    const plans = FLEETS.map((g) =>
      plan({ gpus: g, ...MODEL, gpus_per_run: gpusPerRun(g), reduce_group: reduceGroup }, m),
    );
    const row = (label: string, f: (p: FleetPlan) => string) => `| ${label} | ${plans.map(f).join(" | ")} |`;
    return [
      `### ${title}`,
      "",
      `| | ${FLEETS.map((g) => `${n(g)} GPUs`).join(" | ")} |`,
      `| --- | ${FLEETS.map(() => "---").join(" | ")} |`,
      row("training runs", (p) => n(p.runs)),
      row("snapshots (messages) / s", (p) => n(p.messages_per_s, 1)),
      row("unit-updates / s", (p) => n(p.unit_updates_per_s)),
      row("MB/s on the wire (zstd) / Avro", (p) => `${n(p.wire_mb_per_s, 1)} / ${n(p.raw_mb_per_s, 1)}`),
      row("consumer cores at 50% CPU", (p) => n(p.consumer_cores, 2)),
      row("consumer instances (1 core each)", (p) => n(p.instances)),
      row("partitions", (p) => n(p.partitions)),
      row("distinct (run, layer) keys", (p) => n(p.distinct_keys)),
      row("units tracked", (p) => n(p.units_tracked)),
      row("memory per instance, MB", (p) => n(p.memory_per_instance_mb)),
      row("memory in total, GB", (p) => n(p.memory_total_gb, 1)),
      row("brokers for ingress", (p) => n(p.brokers)),
      row("Prometheus series", (p) => n(p.series)),
      row("publisher CPU per publishing GPU (share of a core)", (p) => pct(p.publisher_cpu_share_per_gpu)),
      row("load on one consumer core per (run, layer) key, at 50%", (p) => pct(p.pressure.key_core)),
      row("load on one broker", (p) => pct(p.pressure.broker)),
      row("load on one Prometheus server", (p) => pct(p.pressure.prometheus)),
      row("binds first", (p) => p.bottleneck),
      "",
    ].join("\n");
  };
  return [
    "# Scaling reluwatch",
    "",
    `Generated by \`npx tsx bench/scale-model.ts\` from \`${source}\` (the figures of \`make bench\`, see`,
    "docs/benchmarks.md); do not edit by hand. Re-run after `make bench` to refresh.",
    "",
    "## Workload",
    "",
    `A model with ${MODEL.layers} ReLU-family MLP layers of ${n(MODEL.units)} units, trained at ${MODEL.steps_per_s} steps/s;`,
    `every GPU is a data-parallel rank and publishes one counts snapshot per layer every ${MODEL.interval_steps} steps`,
    `(${n((MODEL.layers * MODEL.steps_per_s) / MODEL.interval_steps, 2)} snapshots/s per GPU). Snapshot sizes come from encoding a simulated`,
    "snapshot of that width (and zstd-compressing it, as the publishers do by default), not from estimates.",
    "",
    "## Measured inputs",
    "",
    "| input | value | from |",
    "| --- | --- | --- |",
    `| per-core throughput (consumer cost) | ${n(m.service_unit_updates_per_cpu_s / 1e6, 1)}M unit-updates per CPU-second (${n(m.service_unit_updates_per_cpu_s / 4096)} snapshots of 4,096 units), kafka_client=${m.service_client} | ${m.service_cost_source} |`,
    ...(m.scale_out
      ? [
          `| scale-out on the bench machine | 2 instances / 1: ${m.scale_out.ratio === null ? "no ratio (too short to count)" : `×${n(m.scale_out.ratio, 2)}`} over ${n(m.scale_out.overlap_s)} s of both consuming; ${n(m.scale_out.one_per_cpu_s)} / ${n(m.scale_out.two_per_cpu_s)} snapshots per CPU-second | e2e scale-out, on ${m.scale_out.cores} cores shared with the broker: the ratio is that machine's, the per-CPU-second figures are what carries over to others |`,
        ]
      : []),
    `| detector state | ${n(m.bytes_per_unit, 1)} bytes per tracked unit | core: bytes/unit at 1M units, with sums |`,
    `| service base RSS | ${n(m.base_rss_mb)} MB | soak: RSS after warm-up (48 layers × 4096 units tracked) |`,
    `| Prometheus series | ${n(m.series_per_layer, 1)} per (run, layer), ${n(m.series_per_instance)} per instance | counted on a live /metrics scrape |`,
    `| publisher cost | ${n(m.publisher_cpu_us_per_4096_snapshot)} µs CPU per 4096-unit snapshot (zstd) | e2e: publisher |`,
    "",
    "## Assumptions (not measured here)",
    "",
    `- Consumers are sized to run at ${ASSUMPTIONS.cpu_utilisation * 100}% CPU: latency was measured at half the maximum rate.`,
    "- Consumer cost grows with units per snapshot (decode and apply are linear in units); the per-message",
    "  overhead measured at 4096 units is spread over 4× more units here, so this errs on the safe side.",
    `- One broker sustains ${ASSUMPTIONS.broker_mb_per_s} MB/s of compressed produce traffic with replication 3;`,
    `  a partition carries at most ${ASSUMPTIONS.partition_mb_per_s} MB/s; one Prometheus server holds ${n(ASSUMPTIONS.prometheus_series)} active series.`,
    "- Snapshots are keyed by (run, layer), so at most runs × layers partitions carry traffic and a layer's",
    "  whole stream is processed by one instance; past that, more instances do not help.",
    "- Memory is per instance: the detector state of the layers it owns plus the measured base RSS.",
    "",
    "## Fleets",
    "",
    table((g) => g, "One training run spanning the whole fleet"),
    table(() => 64, "Jobs of 64 GPUs each"),
    table(
      (g) => g,
      `One training run, counts summed over data-parallel groups of ${REDUCE_GROUP} ranks`,
      REDUCE_GROUP,
    ),
    "Each group's rank 0 publishes the group's sum (`reluwatch.torch.ReluProbe(..., process_group=group)`,",
    "docs/publishing.md): one message per layer and probe instead of one per rank, the same evidence.",
    "",
    "## Where the bottleneck moves",
    "",
    "- Small fleets need a fraction of one consumer core: one instance, a handful of partitions.",
    "- Consumer CPU grows linearly with GPUs (every rank sends every layer), but in one big job all of",
    "  a layer's snapshots share one key, so one instance must keep up with a whole layer: the",
    '  "load on one consumer core per (run, layer) key" row. Past 100%, send fewer snapshots per layer',
    "  rather than adding instances: sum the counts over data-parallel groups before publishing (the last",
    `  table: groups of ${REDUCE_GROUP} divide a key's load by ${REDUCE_GROUP}), shard the layer across tensor-parallel ranks, or`,
    "  probe less often.",
    "- The wire volume reaches a broker's capacity before Prometheus feels anything: series depend on",
    "  runs × layers, never on GPUs, because no per-rank or per-unit label is exported by default.",
    "- Many small jobs move the pressure to Prometheus series and detector memory, which grow with runs.",
    "",
  ].join("\n");
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) {
  const source = process.argv[2] ?? "docs/benchmarks.json";
  const bench = JSON.parse(readFileSync(source, "utf8"));
  writeFileSync("docs/scaling.md", renderScaling(bench, source));
  process.stderr.write("wrote docs/scaling.md\n");
}
