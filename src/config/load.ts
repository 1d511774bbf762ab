/**
 * Builds the validated settings once at start-up from, in rising precedence:
 * built-in defaults, a YAML or JSON file (--config / RELUWATCH_CONFIG),
 * RELUWATCH_* environment variables, and command-line flags. Any bad value
 * stops start-up with one ConfigError that names the setting the way the
 * user wrote it (flag, variable or file key).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { type DetectorConfig, DetectorConfigError, resolveDetectorConfig } from "../core/index.js";
import { DEFAULT_EVENT_POLICY, type EventPolicy } from "../sink/event-policy.js";
import {
  DEFAULT_KAFKA_CLIENT,
  envOf,
  flagOf,
  type KafkaClient,
  type OnInvalid,
  OPTION_SPECS,
  type OptionSpec,
} from "./options.js";

export type { OnInvalid } from "./options.js";

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = "ConfigError";
  }
}

export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";

export interface KafkaSettings {
  brokers: string[];
  client_id: string;
  ssl: boolean;
  ssl_ca_file?: string;
  ssl_cert_file?: string;
  ssl_key_file?: string;
  ssl_reject_unauthorized: boolean;
  sasl_mechanism?: SaslMechanism;
  sasl_username?: string;
  sasl_password?: string;
  /** The client of the snapshot source and of SnapshotPublisher; unset: DEFAULT_KAFKA_CLIENT. */
  kafka_client?: KafkaClient;
}

export interface LimitSettings {
  max_tracked_units: number;
  max_layers_per_run: number;
  max_units_per_layer: number;
  max_message_bytes: number;
}

export interface Settings {
  kafka: KafkaSettings;
  topic: string;
  group: string;
  events_topic: string;
  /** Which transitions become events on events_topic. */
  events: EventPolicy;
  dead_letter_topic: string;
  restore_lookback_ms: number;
  /** The platformatic source fetches in a worker thread. */
  fetch_thread: boolean;
  state_topic: string;
  checkpoint_interval_ms: number;
  commit_interval_ms: number;
  processing_guarantee: "at_least_once" | "exactly_once";
  /** Unset unless given: the service derives it from the group and the host name. */
  transactional_id?: string;
  start_from: "lookback" | "latest" | "earliest";
  metrics_port: number;
  metrics_host: string;
  /** The bearer token read from http_token_file; undefined when the API is open. */
  http_token?: string;
  /** Without a trailing slash. */
  external_url?: string;
  run_idle_timeout_ms: number;
  idle_flush_ms: number;
  unit_series: boolean;
  unit_series_max: number;
  log_level: string;
  detector: DetectorConfig;
  limits: LimitSettings;
  /** Unset unless given: each command has its own default. */
  on_invalid?: OnInvalid;
}

type Raw = Record<string, unknown>;

interface Sourced {
  value: unknown;
  /** How the user wrote the setting, for error messages. */
  label: string;
}

/** Adds one flag per option of the given groups (and --config) to a commander command. */
export function addOptionFlags(
  command: Command,
  groups: ReadonlyArray<OptionSpec["group"]>,
  /** Options of those groups the command defines its own way. */
  except: readonly string[] = [],
): Command {
  command.option("--config <file>", `YAML or JSON settings file (env ${envOf("config")})`);
  for (const spec of OPTION_SPECS) {
    if (!groups.includes(spec.group) || except.includes(spec.name)) continue;
    const arg = spec.type === "bool" ? "[bool]" : "<value>";
    const shown =
      spec.secret || spec.default === undefined ? "" : ` (default ${formatDefault(spec.default)})`;
    command.option(`${flagOf(spec.name)} ${arg}`, `${spec.doc}${shown}`);
  }
  return command;
}

function formatDefault(value: OptionSpec["default"]): string {
  return Array.isArray(value) ? value.join(",") : String(value);
}

/** commander's camelCase attribute names back to option names. */
function flagsFromCommander(opts: Raw): Map<string, Sourced> {
  const out = new Map<string, Sourced>();
  for (const spec of OPTION_SPECS) {
    const attr = spec.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[attr] !== undefined) out.set(spec.name, { value: opts[attr], label: flagOf(spec.name) });
  }
  return out;
}

export interface LoadInput {
  /** commander's parsed options (opts()). */
  flags: Raw;
  env: NodeJS.ProcessEnv;
  groups: ReadonlyArray<OptionSpec["group"]>;
}

export function loadSettings(input: LoadInput): Settings {
  const specs = OPTION_SPECS.filter((s) => input.groups.includes(s.group));
  const known = new Map(specs.map((s) => [s.name, s]));
  const chosen = new Map<string, Sourced>();

  const configPath = (input.flags.config as string | undefined) ?? input.env[envOf("config")];
  if (configPath) {
    for (const [key, value] of Object.entries(readConfigFile(configPath))) {
      if (!known.has(key)) {
        throw new ConfigError(
          `${key} (in ${configPath})`,
          `unknown setting; known: ${[...known.keys()].join(", ")}`,
        );
      }
      chosen.set(key, { value, label: `${key} (in ${configPath})` });
    }
  }
  for (const spec of specs) {
    const value = input.env[envOf(spec.name)];
    if (value !== undefined && value !== "") chosen.set(spec.name, { value, label: envOf(spec.name) });
  }
  for (const [name, sourced] of flagsFromCommander(input.flags)) {
    if (known.has(name)) chosen.set(name, sourced);
  }

  const values: Raw = {};
  const labels = new Map<string, string>();
  for (const spec of specs) {
    const sourced = chosen.get(spec.name);
    labels.set(spec.name, sourced?.label ?? flagOf(spec.name));
    values[spec.name] = sourced ? parseValue(spec, sourced) : spec.default;
  }
  return assemble(values, labels, input.groups);
}

function readConfigFile(path: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      flagOf("config"),
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      flagOf("config"),
      `${path} is neither valid YAML nor JSON: ${(err as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(flagOf("config"), `${path} must hold a mapping of setting names to values`);
  }
  return parsed as Raw;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

export function parseValue(spec: OptionSpec, { value, label }: Sourced): unknown {
  const fail = (why: string): never => {
    const shown = spec.secret ? "" : `, got ${JSON.stringify(value)}`;
    throw new ConfigError(label, `${why}${shown}`);
  };
  switch (spec.type) {
    case "string":
      if (typeof value !== "string" || value.trim() === "") fail("must be a non-empty string");
      return (value as string).trim();
    case "list": {
      const items = Array.isArray(value)
        ? value.map(String)
        : typeof value === "string"
          ? value.split(",")
          : [];
      const list = items.map((s) => s.trim()).filter((s) => s !== "");
      if (list.length === 0) fail("must be a non-empty comma-separated list");
      return list;
    }
    case "bool":
      if (value === true || value === false) return value;
      if (typeof value === "string" && TRUE.has(value.toLowerCase())) return true;
      if (typeof value === "string" && FALSE.has(value.toLowerCase())) return false;
      return fail("must be true or false");
    case "enum": {
      const text = String(value).toLowerCase();
      if (!spec.values!.includes(text)) fail(`must be one of ${spec.values!.join(", ")}`);
      return text;
    }
    case "int":
    case "number": {
      const n =
        typeof value === "number"
          ? value
          : typeof value === "string" && value.trim() !== ""
            ? Number(value)
            : NaN;
      if (!Number.isFinite(n)) fail("must be a number");
      if (spec.type === "int" && !Number.isInteger(n)) fail("must be an integer");
      if (spec.min !== undefined && n < spec.min) fail(`must be >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) fail(`must be <= ${spec.max}`);
      if (spec.above !== undefined && n <= spec.above) fail(`must be > ${spec.above}`);
      if (spec.below !== undefined && n >= spec.below) fail(`must be < ${spec.below}`);
      return n;
    }
  }
}

function assemble(v: Raw, labels: Map<string, string>, groups: LoadInput["groups"]): Settings {
  const label = (name: string) => labels.get(name) ?? flagOf(name);
  let detector: DetectorConfig;
  try {
    const partial: Raw = {};
    for (const spec of OPTION_SPECS) {
      if (spec.group === "detector" && v[spec.name] !== undefined) partial[spec.name] = v[spec.name];
    }
    detector = resolveDetectorConfig(partial as Partial<DetectorConfig>);
  } catch (err) {
    if (err instanceof DetectorConfigError) throw new ConfigError(label(err.field), err.message);
    throw err;
  }
  const kafka: KafkaSettings = {
    brokers: (v.brokers as string[] | undefined) ?? [],
    client_id: (v.client_id as string | undefined) ?? "reluwatch",
    ssl: Boolean(v.ssl) || v.ssl_ca_file !== undefined || v.ssl_cert_file !== undefined,
    ssl_ca_file: v.ssl_ca_file as string | undefined,
    ssl_cert_file: v.ssl_cert_file as string | undefined,
    ssl_key_file: v.ssl_key_file as string | undefined,
    ssl_reject_unauthorized: v.ssl_reject_unauthorized !== false,
    sasl_mechanism: v.sasl_mechanism as SaslMechanism | undefined,
    sasl_username: v.sasl_username as string | undefined,
    sasl_password: v.sasl_password as string | undefined,
    kafka_client: (v.kafka_client as KafkaClient | undefined) ?? DEFAULT_KAFKA_CLIENT,
  };
  if (groups.includes("kafka")) {
    if (kafka.sasl_mechanism && (!kafka.sasl_username || !kafka.sasl_password)) {
      throw new ConfigError(label("sasl_mechanism"), "needs --sasl-username and --sasl-password");
    }
    if (!kafka.sasl_mechanism && (kafka.sasl_username || kafka.sasl_password)) {
      throw new ConfigError(
        label(kafka.sasl_username ? "sasl_username" : "sasl_password"),
        "needs --sasl-mechanism",
      );
    }
    if ((kafka.ssl_cert_file === undefined) !== (kafka.ssl_key_file === undefined)) {
      throw new ConfigError(
        label(kafka.ssl_cert_file ? "ssl_cert_file" : "ssl_key_file"),
        "needs both --ssl-cert-file and --ssl-key-file",
      );
    }
    for (const name of ["ssl_ca_file", "ssl_cert_file", "ssl_key_file"] as const) {
      const path = kafka[name];
      if (path === undefined) continue;
      try {
        readFileSync(path);
      } catch (err) {
        throw new ConfigError(
          label(name),
          `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        );
      }
    }
  }
  return {
    kafka,
    http_token: readToken(v.http_token_file as string | undefined, label("http_token_file")),
    external_url: checkUrl(v.external_url as string | undefined, label("external_url")),
    topic: v.topic as string,
    group: v.group as string,
    events_topic: v.events_topic as string,
    events: (v.events as EventPolicy | undefined) ?? DEFAULT_EVENT_POLICY,
    dead_letter_topic: v.dead_letter_topic as string,
    restore_lookback_ms: v.restore_lookback_ms as number,
    fetch_thread: v.fetch_thread !== false,
    state_topic: (v.state_topic as string | undefined) || `${v.group as string}.state`,
    checkpoint_interval_ms: v.checkpoint_interval_ms as number,
    commit_interval_ms: v.commit_interval_ms as number,
    processing_guarantee: v.processing_guarantee as "at_least_once" | "exactly_once",
    ...(v.transactional_id ? { transactional_id: v.transactional_id as string } : {}),
    start_from: v.start_from as "lookback" | "latest" | "earliest",
    metrics_port: v.metrics_port as number,
    metrics_host: v.metrics_host as string,
    run_idle_timeout_ms: v.run_idle_timeout_ms as number,
    idle_flush_ms: v.idle_flush_ms as number,
    unit_series: v.unit_series as boolean,
    unit_series_max: v.unit_series_max as number,
    log_level: (v.log_level as string | undefined) ?? "info",
    detector,
    limits: {
      max_tracked_units: v.max_tracked_units as number,
      max_layers_per_run: v.max_layers_per_run as number,
      max_units_per_layer: v.max_units_per_layer as number,
      max_message_bytes: v.max_message_bytes as number,
    },
    ...(v.on_invalid !== undefined ? { on_invalid: v.on_invalid as OnInvalid } : {}),
  };
}

function readToken(path: string | undefined, label: string): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      label,
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const token = text.trim();
  if (token === "" || /\s/.test(token)) {
    throw new ConfigError(label, `${path} must hold one token: non-empty, without spaces or line breaks`);
  }
  return token;
}

function checkUrl(value: string | undefined, label: string): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(label, `must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(label, `must be an http or https URL, got ${JSON.stringify(value)}`);
  }
  return value.replace(/\/+$/, "");
}
