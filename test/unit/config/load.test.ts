import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, envOf, flagOf, loadSettings, OPTION_SPECS } from "../../../src/config/index.js";
import { renderSettingsReference } from "../../../src/config/reference.js";
import { packageRoot } from "../../../src/paths.js";
import { cli } from "../../support/child.js";

const ALL = ["kafka", "stream", "service", "detector", "limits", "input"] as const;
const load = (flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) =>
  loadSettings({ flags, env, groups: ALL });

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "reluwatch-config-")), name);
  writeFileSync(path, text);
  return path;
}

function rejectsNaming(fn: () => unknown, setting: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    if (typeof setting === "string") assert.equal(err.setting, setting);
    else assert.match(err.setting, setting);
    assert.match(err.message, /^invalid setting /);
    return true;
  });
}

describe("settings", () => {
  test("defaults are those documented in the issue and valid", () => {
    const s = load();
    assert.deepEqual(s.kafka.brokers, ["127.0.0.1:9092"]);
    assert.equal(s.topic, "reluwatch.snapshots");
    assert.equal(s.events_topic, "reluwatch.transitions");
    assert.equal(s.dead_letter_topic, "reluwatch.dead-letter");
    assert.equal(s.metrics_port, 9464);
    assert.equal(s.restore_lookback_ms, 30 * 60 * 1000);
    assert.equal(s.state_topic, "reluwatch.state", "<group>.state");
    assert.equal(s.checkpoint_interval_ms, 60_000);
    assert.equal(s.start_from, "lookback");
    assert.equal(load({ group: "team-a" }).state_topic, "team-a.state");
    assert.equal(load({ group: "team-a", stateTopic: "own" }).state_topic, "own");
    assert.equal(s.detector.window_steps, 1000);
    assert.equal(s.detector.window_buckets, 10);
    assert.equal(s.detector.alpha, 0.001);
    assert.equal(s.detector.dead_rate, 0.001);
    assert.equal(s.detector.silent_rate, 0.01);
    assert.equal(s.detector.silent_hysteresis, 0.25);
    assert.equal(s.idle_flush_ms, 5 * 60 * 1000);
    assert.equal(s.kafka.ssl, false);
    assert.equal(s.kafka.sasl_mechanism, undefined);
  });

  test("events: deaths by default, all on request, anything else is refused naming the setting", () => {
    assert.equal(load().events, "deaths");
    assert.equal(load({}, { RELUWATCH_EVENTS: "all" }).events, "all");
    assert.equal(load({ events: "ALL" }).events, "all");
    rejectsNaming(() => load({ events: "first_verdicts" }), "--events");
  });

  test("file < environment < flag, with names derived from one table", () => {
    const file = tempFile("c.yaml", "metrics_port: 1111\nwindow_steps: 2000\ntopic: from-file\n");
    const s = load(
      { config: file, metricsPort: "3333" },
      { RELUWATCH_METRICS_PORT: "2222", RELUWATCH_WINDOW_STEPS: "4000" },
    );
    assert.equal(s.metrics_port, 3333, "flag beats env");
    assert.equal(s.detector.window_steps, 4000, "env beats file");
    assert.equal(s.topic, "from-file", "file beats default");
    const t = load({ idleFlushMs: "60000" }, { RELUWATCH_SILENT_HYSTERESIS: "0.1" });
    assert.deepEqual([t.idle_flush_ms, t.detector.silent_hysteresis], [60_000, 0.1]);
  });

  test("every option is readable from RELUWATCH_<UPPER_SNAKE>", () => {
    const names = OPTION_SPECS.map((s) => envOf(s.name));
    assert.ok(names.includes("RELUWATCH_METRICS_PORT"));
    assert.ok(names.includes("RELUWATCH_RESTORE_LOOKBACK_MS"));
    const s = load({}, { RELUWATCH_BROKERS: "a:1, b:2", RELUWATCH_GROUP: "g", RELUWATCH_ALPHA: "0.01" });
    assert.deepEqual(s.kafka.brokers, ["a:1", "b:2"]);
    assert.equal(s.group, "g");
    assert.equal(s.detector.alpha, 0.01);
  });

  test("JSON config files work too", () => {
    const file = tempFile("c.json", JSON.stringify({ brokers: ["x:9"], unit_series: true }));
    const s = load({ config: file });
    assert.deepEqual(s.kafka.brokers, ["x:9"]);
    assert.equal(s.unit_series, true);
  });

  test("a bad value is named the way the user wrote it", () => {
    rejectsNaming(() => load({ metricsPort: "abc" }), "--metrics-port");
    rejectsNaming(() => load({}, { RELUWATCH_METRICS_PORT: "70000" }), "RELUWATCH_METRICS_PORT");
    const file = tempFile("c.yaml", "alpha: 2\n");
    rejectsNaming(() => load({ config: file }), /^alpha \(in .*c\.yaml\)$/);
    rejectsNaming(() => load({ windowSteps: "1.5" }), "--window-steps");
    rejectsNaming(() => load({ ssl: "maybe" }), "--ssl");
    rejectsNaming(() => load({ saslMechanism: "gssapi" }), "--sasl-mechanism");
  });

  test("rules across settings are checked by the detector and named", () => {
    rejectsNaming(() => load({}, { RELUWATCH_WINDOW_BUCKETS: "7" }), "RELUWATCH_WINDOW_BUCKETS");
    rejectsNaming(() => load({ deadRate: "0.05", silentRate: "0.01" }), /--dead-rate|--silent-rate/);
  });

  test("unknown keys in a file are errors, not silent defaults", () => {
    const file = tempFile("c.yaml", "metrics_prot: 1\n");
    rejectsNaming(() => load({ config: file }), /^metrics_prot/);
  });

  test("SASL needs a user and a password; TLS files must exist", () => {
    rejectsNaming(() => load({ saslMechanism: "scram-sha-512" }), "--sasl-mechanism");
    rejectsNaming(() => load({ saslUsername: "u" }), "--sasl-username");
    const s = load({ saslMechanism: "scram-sha-256", saslUsername: "u" }, { RELUWATCH_SASL_PASSWORD: "p" });
    assert.equal(s.kafka.sasl_mechanism, "scram-sha-256");
    rejectsNaming(() => load({ sslCaFile: "/nonexistent/ca.pem" }), "--ssl-ca-file");
    const ca = tempFile("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    assert.equal(load({ sslCaFile: ca }).kafka.ssl, true, "a CA file implies TLS");
  });

  test("http_token_file is read once, trimmed; an unreadable, empty or spaced token stops start-up", () => {
    assert.equal(load().http_token, undefined);
    const file = tempFile("token", "  abc.DEF-123\n");
    assert.equal(load({ httpTokenFile: file }).http_token, "abc.DEF-123");
    assert.equal(load({}, { RELUWATCH_HTTP_TOKEN_FILE: file }).http_token, "abc.DEF-123");
    rejectsNaming(() => load({ httpTokenFile: "/no/such/token" }), "--http-token-file");
    rejectsNaming(() => load({ httpTokenFile: tempFile("empty", "\n") }), "--http-token-file");
    rejectsNaming(() => load({ httpTokenFile: tempFile("two", "a b\n") }), "--http-token-file");
  });

  test("external_url must be an absolute http(s) URL; a trailing slash is dropped", () => {
    assert.equal(load().external_url, undefined);
    assert.equal(
      load({ externalUrl: "https://rw.example.com/prefix/" }).external_url,
      "https://rw.example.com/prefix",
    );
    rejectsNaming(() => load({ externalUrl: "rw.example.com" }), "--external-url");
    rejectsNaming(
      () => load({}, { RELUWATCH_EXTERNAL_URL: "ftp://rw.example.com" }),
      "RELUWATCH_EXTERNAL_URL",
    );
  });

  test("secrets are not echoed in errors", () => {
    assert.throws(
      () => load({ saslPassword: "" }),
      (err: Error) => !err.message.includes('""') && /--sasl-password/.test(err.message),
    );
  });

  test("docs/configuration.md holds the current generated reference", () => {
    const doc = readFileSync(join(packageRoot, "docs/configuration.md"), "utf8");
    assert.ok(doc.includes(renderSettingsReference()), "docs/configuration.md is stale: run `make docs`");
    for (const spec of OPTION_SPECS) assert.ok(doc.includes(flagOf(spec.name)));
  });
});

describe("the CLI", () => {
  test("a bad setting exits 2 with one line that names it", async () => {
    const r = await cli(["consume", "--window-steps", "abc"]);
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^reluwatch: invalid setting --window-steps: must be a number, got "abc"$/);
  });
});
