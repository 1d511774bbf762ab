/**
 * The source of reluwatch's Prometheus recording and alerting rules.
 *
 * Why generated rather than hand-written YAML: every threshold and time window
 * lives once, in THRESHOLDS and PRODUCTION_TIMINGS below, and the same source
 * renders the committed rule file (deploy/prometheus/rules/reluwatch.rules.yml),
 * the Kubernetes PrometheusRule, and the fast-timed variant the live tests load.
 * The fast variant changes only `for:` durations and look-back windows, never an
 * expression's shape or a threshold, so what the live test proves holds for the
 * shipped file. A test fails when the committed YAML differs from this source.
 */
import { stringify } from "yaml";

/** Alert thresholds: the numbers an operator tunes. */
export const THRESHOLDS = {
  /** ReluUnitsDied: more than this many units crossed into dead within `deathsWindow`. */
  unitsDiedAbove: 0,
  /** ReluLayerDying: dead ratio at or above this, and rising. */
  deadRatioWarning: 0.1,
  /** ReluLayerDead: dead ratio at or above this. */
  deadRatioCritical: 0.3,
  /** ReluBornDead: share of a layer's units dead at their first verdict. */
  bornDeadRatio: 0.02,
  /** ReluRankStale: more than this many ranks silent for a layer. */
  staleRanksAbove: 0,
  /** ReluNonFiniteActivations: more than this many NaN/Inf values within `nonFiniteWindow`. */
  nonFiniteValuesAbove: 0,
  /** ReluwatchNoSnapshots: seconds since a run's latest snapshot. */
  noSnapshotsSeconds: 900,
  /** ReluwatchConsumerLagging: messages behind, summed over a topic's partitions. */
  consumerLagMessages: 100_000,
  /** ReluwatchInvalidSnapshots: invalid snapshots per second, by reason. */
  invalidSnapshotsPerSecond: 0,
} as const;

/** Durations in Prometheus notation ("5m", "30s"). */
export interface RuleTimings {
  /** Evaluation interval of the rule group. */
  interval: string;
  /** Range over which deaths and non-finite values are counted. */
  deathsWindow: string;
  /** Range over which snapshot and invalid rates are taken. */
  rateWindow: string;
  /** "Rising" means above the minimum over this range. */
  risingWindow: string;
  for: {
    layerDying: string;
    layerDead: string;
    bornDead: string;
    rankStale: string;
    noSnapshots: string;
    consumerLagging: string;
    invalidSnapshots: string;
  };
}

export const PRODUCTION_TIMINGS: RuleTimings = {
  interval: "30s",
  deathsWindow: "5m",
  rateWindow: "5m",
  risingWindow: "15m",
  for: {
    layerDying: "5m",
    layerDead: "2m",
    bornDead: "1m",
    rankStale: "5m",
    noSnapshots: "5m",
    consumerLagging: "10m",
    invalidSnapshots: "5m",
  },
};

/**
 * Where runbook_url points. docs/runbook.md has one section per alert, whose
 * anchor is the alert name in lower case; point this at wherever your copy of
 * the docs is served.
 */
export const RUNBOOK_BASE_URL = "https://github.com/reluwatch/reluwatch/blob/main/docs/runbook.md";

/**
 * The explorer_url annotation of the layer alerts: the layer's page in the unit
 * explorer of the instance that exports the layer, at the URL that instance
 * publishes as reluwatch_explorer_info{url} (its external_url setting). The
 * join on instance and job picks the owner when several instances share a
 * consumer group. Empty when the owner has no external_url.
 * EXPLORER_OWNER_QUERY is its PromQL, the run and layer in place of the %q.
 */
export const EXPLORER_OWNER_QUERY =
  "reluwatch_explorer_info * on (instance, job) group_left () max by (instance, job) (reluwatch_layer_units{run=%q, layer=%q})";
export const EXPLORER_URL_ANNOTATION =
  `{{ with printf ${JSON.stringify(EXPLORER_OWNER_QUERY)} $labels.run $labels.layer | query }}` +
  "{{ with index . 0 }}{{ .Labels.url }}/ui/layer?run={{ $labels.run | urlquery }}&layer={{ $labels.layer | urlquery }}{{ end }}{{ end }}";

export type Severity = "info" | "warning" | "critical";

export interface RecordingRule {
  record: string;
  expr: string;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: Severity };
  annotations: { summary: string; description: string; runbook_url: string; explorer_url?: string };
}

export interface RuleGroup {
  name: string;
  interval: string;
  rules: (RecordingRule | AlertingRule)[];
}

export interface RuleFile {
  groups: RuleGroup[];
}

/** Names of the recording rules, shared with the dashboards. */
export const RECORDED = {
  layerUnits: "run_layer:reluwatch_layer_units:sum",
  layerUnitsByState: "run_layer_state:reluwatch_layer_units:sum",
  deadRatio: "run_layer:reluwatch_layer_dead_ratio:max",
  deaths: "run_layer:reluwatch_unit_deaths:increase",
  bornDeadRatio: "run_layer:reluwatch_layer_born_dead_units:ratio",
  staleRanks: "run_layer:reluwatch_layer_stale_ranks:max",
  nonFinite: "run_layer:reluwatch_layer_nonfinite_values:increase",
  runLastSnapshot: "run:reluwatch_layer_last_snapshot_timestamp_seconds:max",
  topicLag: "topic:reluwatch_consumer_lag_messages:sum",
  invalidRate: "reason:reluwatch_invalid_snapshots:rate",
  snapshotRate: "result:reluwatch_snapshots:rate",
  snapshotAgeP99: "reluwatch_snapshot_age_seconds:p99",
} as const;

/** The alert names, in the order they are declared. */
export const ALERT_NAMES = [
  "ReluUnitsDied",
  "ReluLayerDying",
  "ReluLayerDead",
  "ReluBornDead",
  "ReluRankStale",
  "ReluNonFiniteActivations",
  "ReluwatchNoSnapshots",
  "ReluwatchConsumerLagging",
  "ReluwatchInvalidSnapshots",
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

function runbook(alert: AlertName): string {
  return `${RUNBOOK_BASE_URL}#${alert.toLowerCase()}`;
}

function recordingRules(t: RuleTimings): RecordingRule[] {
  // Aggregating by (run, layer) drops instance/job: a layer lives in one
  // instance, and during a rebalance two may briefly export it, where max (for
  // ratios) and sum (for counts of what happened) are the safe readings.
  return [
    { record: RECORDED.layerUnits, expr: "sum by (run, layer) (reluwatch_layer_units)" },
    { record: RECORDED.layerUnitsByState, expr: "sum by (run, layer, state) (reluwatch_layer_units)" },
    { record: RECORDED.deadRatio, expr: "max by (run, layer) (reluwatch_layer_dead_ratio)" },
    {
      record: RECORDED.deaths,
      expr: `sum by (run, layer) (increase(reluwatch_unit_transitions_total{to="dead"}[${t.deathsWindow}]))`,
    },
    {
      record: RECORDED.bornDeadRatio,
      // The "> 0" keeps a layer with no units yet out, instead of recording 0/0.
      expr: `max by (run, layer) (reluwatch_layer_born_dead_units) / (${RECORDED.layerUnits} > 0)`,
    },
    { record: RECORDED.staleRanks, expr: "max by (run, layer) (reluwatch_layer_stale_ranks)" },
    {
      record: RECORDED.nonFinite,
      expr: `sum by (run, layer) (increase(reluwatch_layer_nonfinite_values_total[${t.deathsWindow}]))`,
    },
    {
      record: RECORDED.runLastSnapshot,
      expr: "max by (run) (reluwatch_layer_last_snapshot_timestamp_seconds)",
    },
    { record: RECORDED.topicLag, expr: "sum by (topic) (reluwatch_consumer_lag_messages)" },
    {
      record: RECORDED.invalidRate,
      expr: `sum by (reason) (rate(reluwatch_invalid_snapshots_total[${t.rateWindow}]))`,
    },
    {
      record: RECORDED.snapshotRate,
      expr: `sum by (result) (rate(reluwatch_snapshots_total[${t.rateWindow}]))`,
    },
    {
      record: RECORDED.snapshotAgeP99,
      expr: `histogram_quantile(0.99, sum by (le) (rate(reluwatch_snapshot_age_seconds_bucket[${t.rateWindow}])))`,
    },
  ];
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10}%`;
}

function alertingRules(t: RuleTimings): AlertingRule[] {
  const T = THRESHOLDS;
  const rules: AlertingRule[] = [
    {
      alert: "ReluUnitsDied",
      expr: `${RECORDED.deaths} > ${T.unitsDiedAbove}`,
      labels: { severity: "info" },
      annotations: {
        summary: "ReLU units died in layer {{ $labels.layer }} of run {{ $labels.run }}.",
        description: `{{ $value | printf "%.0f" }} unit(s) of layer {{ $labels.layer }} in run {{ $labels.run }} crossed into dead in the last ${t.deathsWindow}.`,
        runbook_url: runbook("ReluUnitsDied"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluLayerDying",
      expr: `${RECORDED.deadRatio} >= ${T.deadRatioWarning} and ${RECORDED.deadRatio} > min_over_time(${RECORDED.deadRatio}[${t.risingWindow}])`,
      for: t.for.layerDying,
      labels: { severity: "warning" },
      annotations: {
        summary: "Layer {{ $labels.layer }} of run {{ $labels.run }} is dying.",
        description: `{{ $value | humanizePercentage }} of the units of layer {{ $labels.layer }} in run {{ $labels.run }} are dead (warning at ${pct(T.deadRatioWarning)}), and the share rose within the last ${t.risingWindow}.`,
        runbook_url: runbook("ReluLayerDying"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluLayerDead",
      expr: `${RECORDED.deadRatio} >= ${T.deadRatioCritical}`,
      for: t.for.layerDead,
      labels: { severity: "critical" },
      annotations: {
        summary: "Layer {{ $labels.layer }} of run {{ $labels.run }} has lost most of its capacity.",
        description: `{{ $value | humanizePercentage }} of the units of layer {{ $labels.layer }} in run {{ $labels.run }} are dead (critical at ${pct(T.deadRatioCritical)}).`,
        runbook_url: runbook("ReluLayerDead"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluBornDead",
      expr: `${RECORDED.bornDeadRatio} >= ${T.bornDeadRatio}`,
      for: t.for.bornDead,
      labels: { severity: "warning" },
      annotations: {
        summary: "Layer {{ $labels.layer }} of run {{ $labels.run }} has units dead from the start.",
        description: `{{ $value | humanizePercentage }} of the units of layer {{ $labels.layer }} in run {{ $labels.run }} were dead at their first verdict (threshold ${pct(T.bornDeadRatio)}): an initialisation problem.`,
        runbook_url: runbook("ReluBornDead"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluRankStale",
      expr: `${RECORDED.staleRanks} > ${T.staleRanksAbove}`,
      for: t.for.rankStale,
      labels: { severity: "warning" },
      annotations: {
        summary: "A rank stopped reporting layer {{ $labels.layer }} of run {{ $labels.run }}.",
        description:
          "{{ $value }} rank(s) stopped reporting layer {{ $labels.layer }} of run {{ $labels.run }}; its verdicts lack their inputs.",
        runbook_url: runbook("ReluRankStale"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluNonFiniteActivations",
      expr: `${RECORDED.nonFinite} > ${T.nonFiniteValuesAbove}`,
      labels: { severity: "critical" },
      annotations: {
        summary: "Non-finite activations in layer {{ $labels.layer }} of run {{ $labels.run }}.",
        description: `{{ $value | printf "%.0f" }} NaN or infinite activation value(s) reported for layer {{ $labels.layer }} of run {{ $labels.run }} in the last ${t.deathsWindow}.`,
        runbook_url: runbook("ReluNonFiniteActivations"),
        explorer_url: EXPLORER_URL_ANNOTATION,
      },
    },
    {
      alert: "ReluwatchNoSnapshots",
      expr: `time() - ${RECORDED.runLastSnapshot} > ${T.noSnapshotsSeconds}`,
      for: t.for.noSnapshots,
      labels: { severity: "warning" },
      annotations: {
        summary: "Run {{ $labels.run }} stopped sending snapshots.",
        description: `No snapshot from run {{ $labels.run }} for {{ $value | humanizeDuration }} (threshold ${T.noSnapshotsSeconds}s).`,
        runbook_url: runbook("ReluwatchNoSnapshots"),
      },
    },
    {
      alert: "ReluwatchConsumerLagging",
      expr: `${RECORDED.topicLag} > ${T.consumerLagMessages}`,
      for: t.for.consumerLagging,
      labels: { severity: "warning" },
      annotations: {
        summary: "reluwatch is falling behind on topic {{ $labels.topic }}.",
        description: `The consumer group is {{ $value | printf "%.0f" }} messages behind on topic {{ $labels.topic }} (threshold ${T.consumerLagMessages}).`,
        runbook_url: runbook("ReluwatchConsumerLagging"),
      },
    },
    {
      alert: "ReluwatchInvalidSnapshots",
      expr: `${RECORDED.invalidRate} > ${T.invalidSnapshotsPerSecond}`,
      for: t.for.invalidSnapshots,
      labels: { severity: "warning" },
      annotations: {
        summary: "Invalid snapshots arrive with reason {{ $labels.reason }}.",
        description: `{{ $value | printf "%.2f" }} invalid snapshot(s) per second with reason {{ $labels.reason }} over the last ${t.rateWindow}; they go to the dead-letter topic.`,
        runbook_url: runbook("ReluwatchInvalidSnapshots"),
      },
    },
  ];
  return rules;
}

/**
 * The rules, with the given timings (production unless a test asks otherwise),
 * in one group: recordings first, then the alerts that read them.
 *
 * Why one group: Prometheus evaluates the rules of a group in order at one
 * timestamp, so an alert sees the recording made at the same instant; separate
 * groups run on their own schedules, in no fixed order, and an alert there
 * reads whichever evaluation of the recording group happened last. With the
 * recordings in their own group, ReluLayerDying's text said "19%" or "20%" for
 * the same input depending on which group ran first (promtool orders groups at
 * random too). A test asserts every recorded series is read only after its
 * rule, within the same group.
 */
export function buildRules(timings: RuleTimings = PRODUCTION_TIMINGS): RuleFile {
  return {
    groups: [
      {
        name: "reluwatch",
        interval: timings.interval,
        rules: [...recordingRules(timings), ...alertingRules(timings)],
      },
    ],
  };
}

const HEADER = "# Generated from deploy/prometheus/rules.ts by `make rules`; do not edit by hand.\n";

/** The rule file as Prometheus reads it. */
export function renderRulesYaml(timings: RuleTimings = PRODUCTION_TIMINGS): string {
  return HEADER + stringify(buildRules(timings), { lineWidth: 0 });
}
