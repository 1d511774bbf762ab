/**
 * Every setting reluwatch reads, declared once. The flag, the environment
 * variable and the config-file key are all derived from `name`, so they cannot
 * drift apart: `metrics_port` ↔ `--metrics-port` ↔ `RELUWATCH_METRICS_PORT` ↔
 * `metrics_port:` in YAML/JSON. Units are part of the names (`_ms`, `_steps`,
 * `_bytes`).
 */

import { DEFAULT_EVENT_POLICY, EVENT_POLICIES } from "../sink/event-policy.js";

/** What becomes of a record the processor rejects (the `on_invalid` setting). */
export const ON_INVALID_POLICIES = ["dead_letter", "skip", "fail"] as const;
export type OnInvalid = (typeof ON_INVALID_POLICIES)[number];

/** Clients the snapshot source can fetch with (the `kafka_client` setting). */
export const KAFKA_CLIENTS = ["kafkajs", "platformatic"] as const;
export type KafkaClient = (typeof KAFKA_CLIENTS)[number];
export const DEFAULT_KAFKA_CLIENT: KafkaClient = "platformatic";

export type OptionType = "string" | "int" | "number" | "bool" | "list" | "enum";

export interface OptionSpec {
  name: string;
  type: OptionType;
  /** undefined: the option is unset unless given. */
  default?: string | number | boolean | string[];
  /** Allowed values for enum options. */
  values?: readonly string[];
  /** Inclusive lower bound for numbers. */
  min?: number;
  /** Exclusive lower bound for numbers. */
  above?: number;
  /** Exclusive upper bound for numbers. */
  below?: number;
  /** Inclusive upper bound for numbers. */
  max?: number;
  doc: string;
  /**
   * Which commands read it: kafka (the connection: consume, record, simulate), stream (consume's topics),
   * service (consume), detector and limits (consume and replay), input (consume, record, replay).
   */
  group: "kafka" | "stream" | "service" | "detector" | "limits" | "input";
  /** Secrets are never logged or echoed in errors. */
  secret?: boolean;
}

export const OPTION_SPECS: readonly OptionSpec[] = [
  // Kafka connection
  {
    name: "brokers",
    type: "list",
    default: ["127.0.0.1:9092"],
    group: "kafka",
    doc: "Kafka bootstrap servers, comma-separated host:port.",
  },
  {
    name: "client_id",
    type: "string",
    default: "reluwatch",
    group: "kafka",
    doc: "Kafka client id (appears in broker logs and quotas).",
  },
  {
    name: "topic",
    type: "string",
    default: "reluwatch.snapshots",
    group: "stream",
    doc: "Topic of ActivationSnapshot records.",
  },
  {
    name: "group",
    type: "string",
    default: "reluwatch",
    group: "stream",
    doc: "Consumer group; instances in one group share the partitions.",
  },
  {
    name: "events_topic",
    type: "string",
    default: "reluwatch.transitions",
    group: "stream",
    doc: "Topic the UnitTransition events are written to.",
  },
  {
    name: "events",
    type: "enum",
    values: EVENT_POLICIES,
    default: DEFAULT_EVENT_POLICY,
    group: "service",
    doc: "Which transitions are written to events_topic: deaths (every move into or out of DEAD, born dead included) or all (also first verdicts of living units and ACTIVE/MOSTLY_SILENT moves). Every transition is counted in reluwatch_unit_transitions_total either way.",
  },
  {
    name: "dead_letter_topic",
    type: "string",
    default: "reluwatch.dead-letter",
    group: "stream",
    doc: "Topic invalid or over-limit snapshots are copied to, unchanged, with the error in headers.",
  },
  {
    name: "ssl",
    type: "bool",
    default: false,
    group: "kafka",
    doc: "Connect to Kafka over TLS.",
  },
  {
    name: "ssl_ca_file",
    type: "string",
    group: "kafka",
    doc: "PEM file of the CA that signed the brokers' certificates (implies --ssl).",
  },
  {
    name: "ssl_cert_file",
    type: "string",
    group: "kafka",
    doc: "PEM client certificate for mutual TLS (implies --ssl).",
  },
  {
    name: "ssl_key_file",
    type: "string",
    group: "kafka",
    doc: "PEM private key of the client certificate.",
  },
  {
    name: "ssl_reject_unauthorized",
    type: "bool",
    default: true,
    group: "kafka",
    doc: "Reject brokers whose certificate does not verify. Turn off only for testing.",
  },
  {
    name: "sasl_mechanism",
    type: "enum",
    values: ["plain", "scram-sha-256", "scram-sha-512"],
    group: "kafka",
    doc: "SASL mechanism; needs --sasl-username and --sasl-password.",
  },
  { name: "sasl_username", type: "string", group: "kafka", doc: "SASL user name." },
  {
    name: "sasl_password",
    type: "string",
    group: "kafka",
    secret: true,
    doc: "SASL password (prefer RELUWATCH_SASL_PASSWORD over the flag, which shows in process lists).",
  },
  {
    name: "kafka_client",
    type: "enum",
    values: KAFKA_CLIENTS,
    default: DEFAULT_KAFKA_CLIENT,
    group: "kafka",
    doc: "Kafka client that reads the snapshot topic (consume) and publishes snapshots (simulate, demo): @platformatic/kafka (the faster, see docs/benchmarks.md), or kafkajs. Events, dead letters and the state topic are written, and record reads, with kafkajs either way.",
  },
  {
    name: "fetch_thread",
    type: "bool",
    default: true,
    group: "stream",
    doc: "With kafka_client platformatic: while a partition catches up (after its assignment, a restore's seek or a restart, until it reaches the end of its log), fetch the snapshot topic in a worker thread, where the client parses responses and inflates compressed batches, while the main thread decodes and counts. Caught up, the main thread fetches: handing answers over costs more CPU than it saves once the backlog is gone. Turn off to keep consume on one thread (one core).",
  },
  {
    name: "restore_lookback_ms",
    type: "int",
    default: 30 * 60 * 1000,
    min: 0,
    group: "stream",
    doc: "On partition assignment, re-read this much history to rebuild the layers' windows before going live: the fallback for layers with no stored state in state_topic.",
  },
  {
    name: "state_topic",
    type: "string",
    group: "stream",
    doc: "Compacted changelog topic of the detector state (docs/state.md); default <group>.state (reluwatch.state for the default group), since the state belongs to one group's partitions of one snapshot topic. Created if absent, with the snapshot topic's partition count. Restores read it instead of re-reading input.",
  },
  {
    name: "checkpoint_interval_ms",
    type: "int",
    default: 60_000,
    min: 0,
    group: "stream",
    doc: "Write a partition's layers to state_topic at most this often while consuming (also on revocation and on shutdown). Shorter: less input to replay after a crash; longer: fewer changelog bytes.",
  },
  {
    name: "commit_interval_ms",
    type: "int",
    default: 1000,
    min: 0,
    group: "stream",
    doc: "Commit at most this often, like Kafka Streams' commit.interval.ms: between commits batches only advance positions and buffer their events and dead letters; a commit writes them, then the state checkpoints due, then the offsets. Also on revocation, shutdown and once 10,000 events and dead letters are buffered; 0 commits after every batch. Kafka Streams defaults to 30 s (at-least-once) and 100 ms (exactly-once); 1 s keeps an event's added delay under a second, far below the minutes on which dead-unit alerts act, while a commit (an offset commit, or a transaction with its markers on every partition it wrote) is paid once a second rather than once a batch. Longer: fewer commits, later events for read_committed readers, more input processed again after a crash.",
  },
  {
    name: "processing_guarantee",
    type: "enum",
    values: ["at_least_once", "exactly_once"],
    default: "at_least_once",
    group: "stream",
    doc: "at_least_once: events are acknowledged before the offsets are committed, so a crash emits again the events since the last commit (about commit_interval_ms of input). exactly_once: each commit is one Kafka transaction holding the events, dead letters, state checkpoints and offsets; readers of events_topic must use isolation.level=read_committed. Needs a broker that allows transactions and, with ACLs, Write and Describe on the transactional id (docs/architecture.md).",
  },
  {
    name: "transactional_id",
    type: "string",
    group: "stream",
    doc: "Transactional id of the exactly_once producer; default <group>-<host name>. It must stay the same when an instance restarts and differ between instances that run at once: the restarted producer then fences the one it replaces (a StatefulSet gives each pod a stable name; a Deployment does not, see docs/architecture.md).",
  },
  {
    name: "start_from",
    type: "enum",
    values: ["lookback", "latest", "earliest"],
    default: "lookback",
    group: "stream",
    doc: "Where a consumer group that never committed starts: lookback rebuilds windows from restore_lookback_ms ago with events suppressed up to the end of the topic at assignment, then goes live; latest goes live at the end. earliest processes the whole retained topic live, re-emitting its history: only for a backfill into an empty events topic, or a test that starts the consumer before the producer.",
  },
  // Service
  {
    name: "metrics_port",
    type: "int",
    default: 9464,
    min: 0,
    max: 65535,
    group: "service",
    doc: "HTTP port of /metrics, /healthz, /readyz and the /api (0 picks a free port).",
  },
  {
    name: "metrics_host",
    type: "string",
    default: "0.0.0.0",
    group: "service",
    doc: "Address the HTTP server binds to.",
  },
  {
    name: "http_token_file",
    type: "string",
    group: "service",
    doc: "File holding a bearer token, read at start-up, that /api and /ui then require (Authorization: Bearer <token>); /metrics, /healthz and /readyz stay open.",
  },
  {
    name: "external_url",
    type: "string",
    group: "service",
    doc: "URL users reach this instance at (e.g. https://reluwatch.example.com); alerts and dashboards link to its explorer pages, /ui/layer?run=…&layer=….",
  },
  {
    name: "run_idle_timeout_ms",
    type: "int",
    default: 6 * 60 * 60 * 1000,
    above: 0,
    group: "service",
    doc: "A run that sent nothing for this long is forgotten: its state and metric series are removed.",
  },
  {
    name: "idle_flush_ms",
    type: "int",
    default: 5 * 60 * 1000,
    above: 0,
    group: "service",
    doc: "A layer that received nothing for this long has its still-open bucket classified, so the last verdicts of a run that stopped publishing are emitted.",
  },
  {
    name: "unit_series",
    type: "bool",
    default: false,
    group: "service",
    doc: "Export reluwatch_unit_firing_rate for the units closest to death (per-unit series; opt-in).",
  },
  {
    name: "unit_series_max",
    type: "int",
    default: 1000,
    min: 1,
    group: "service",
    doc: 'Cap on reluwatch_unit_firing_rate series in total; the rest fold into one unit="other" series per layer.',
  },
  {
    name: "log_level",
    type: "enum",
    values: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    default: "info",
    group: "service",
    doc: "Log level of the JSON-lines log on stderr.",
  },
  // Detector (consume and replay)
  {
    name: "window_steps",
    type: "int",
    default: 1000,
    min: 1,
    group: "detector",
    doc: "Length of the rolling window, in training steps.",
  },
  {
    name: "window_buckets",
    type: "int",
    default: 10,
    min: 1,
    group: "detector",
    doc: "Buckets the window is kept in; must divide window_steps.",
  },
  {
    name: "alpha",
    type: "number",
    default: 0.001,
    above: 0,
    below: 1,
    group: "detector",
    doc: "1 − confidence of a dead verdict.",
  },
  {
    name: "dead_rate",
    type: "number",
    default: 0.001,
    above: 0,
    below: 1,
    group: "detector",
    doc: "A unit is dead when its firing rate is below this with confidence 1 − alpha.",
  },
  {
    name: "silent_rate",
    type: "number",
    default: 0.01,
    above: 0,
    below: 1,
    group: "detector",
    doc: "Living units firing on fewer than this share of inputs are mostly-silent.",
  },
  {
    name: "silent_hysteresis",
    type: "number",
    default: 0.25,
    min: 0,
    below: 1,
    group: "detector",
    doc: "Band around silent_rate, relative: an active unit turns mostly-silent below silent_rate × (1 − this), a mostly-silent one turns active at silent_rate × (1 + this).",
  },
  {
    name: "revive_min_fires",
    type: "int",
    default: 3,
    min: 1,
    group: "detector",
    doc: "Fires after a dead verdict needed (at a rate >= dead_rate) before the unit counts as alive again.",
  },
  {
    name: "effective_sample_fraction",
    type: "number",
    default: 1,
    above: 0,
    max: 1,
    group: "detector",
    doc: "Share of samples counted as independent (lower it when samples are correlated tokens).",
  },
  {
    name: "constant_cv",
    type: "number",
    default: 0.001,
    above: 0,
    group: "detector",
    doc: "A living unit whose activation's coefficient of variation is below this is flagged constant.",
  },
  {
    name: "closest_k",
    type: "int",
    default: 10,
    min: 0,
    max: 1000,
    group: "detector",
    doc: "How many living units closest to death each layer summary lists.",
  },
  // Limits
  {
    name: "max_tracked_units",
    type: "int",
    default: 10_000_000,
    min: 1,
    group: "limits",
    doc: "Units tracked at once, summed over every layer of every run (memory: about 62 bytes a unit without activation sums, 102 with). A new layer that does not fit evicts the runs idle for idle_flush_ms, longest idle first; if that is not enough its snapshots are rejected as over_limit (limit_tracked_units) and go where on_invalid says. Sizing: docs/configuration.md.",
  },
  {
    name: "max_layers_per_run",
    type: "int",
    default: 1000,
    min: 1,
    group: "limits",
    doc: "Layers tracked per run; snapshots of further layers are dead-lettered as over_limit.",
  },
  {
    name: "max_units_per_layer",
    type: "int",
    default: 1 << 20,
    min: 1,
    group: "limits",
    doc: "Largest layer_units accepted; larger layers are dead-lettered as over_limit.",
  },
  {
    name: "on_invalid",
    type: "enum",
    values: ON_INVALID_POLICIES,
    group: "input",
    doc: "What becomes of a snapshot that does not decode or is over a limit: dead_letter (copied to dead_letter_topic; consume's default), skip (counted and logged only; record's default) or fail (the command stops with the error; replay's default). record and replay have no dead-letter topic and accept skip or fail.",
  },
  {
    name: "max_message_bytes",
    type: "int",
    default: 4 * 1024 * 1024,
    min: 1024,
    group: "limits",
    doc: "Largest snapshot message decoded; larger messages are dead-lettered as invalid (too_large).",
  },
];

/** The option groups `reluwatch consume` reads. */
export const CONSUME_GROUPS = ["kafka", "stream", "service", "detector", "limits", "input"] as const;

export type OptionName = (typeof OPTION_SPECS)[number]["name"];

export function flagOf(name: string): string {
  return `--${name.replaceAll("_", "-")}`;
}

export function envOf(name: string): string {
  return `RELUWATCH_${name.toUpperCase()}`;
}
