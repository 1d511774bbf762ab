/**
 * The observability kit against real Prometheus and Alertmanager: a static
 * exporter serves exposition text shaped like reluwatch's contract (one layer
 * dying, one healthy), Prometheus scrapes it with the shipped rules (test-sized
 * durations), and Alertmanager, configured from the shipped file, delivers to a
 * webhook served here. Then every dashboard query runs against that Prometheus.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dashboardQueries, variableQueries } from "../../deploy/grafana/queries.js";
import { renderExposition, type Sample } from "../support/exposition.js";
import {
  alertmanagerConfigForTest,
  fastRuleFile,
  prometheusConfigForTest,
  type RunningAlertmanager,
  type RunningPrometheus,
  type StaticExporter,
  startAlertmanager,
  startPrometheus,
  startStaticExporter,
  startWebhookReceiver,
  type WebhookReceiver,
} from "../support/prometheus.js";

const PROMETHEUS_PORT = 19590;
const ALERTMANAGER_PORT = 19591;
const RUN = "r1";
const DYING = "fc_dying";
const HEALTHY = "fc_healthy";
const UNITS = 100;
const FIRING_RATE_BUCKETS = ["0", "0.01", "0.1", "0.5", "1", "+Inf"];

/** Units dead in the dying layer at `t` seconds: none, then 5 more every 2 s, up to 20 (below critical). */
function deadUnitsAt(t: number): number {
  return Math.min(20, Math.max(0, Math.floor((t - 4) / 2) * 5));
}

function layerSamples(layer: string, dead: number, t: number): Sample[] {
  const silent = 10;
  const lbl = (extra: Record<string, string> = {}) => ({ run: RUN, layer, ...extra });
  const cumulative = [dead, dead + silent, dead + silent + 5, 60, UNITS, UNITS];
  return [
    { name: "reluwatch_layer_units", labels: lbl({ state: "unknown" }), value: 0 },
    { name: "reluwatch_layer_units", labels: lbl({ state: "active" }), value: UNITS - silent - dead },
    { name: "reluwatch_layer_units", labels: lbl({ state: "mostly_silent" }), value: silent },
    { name: "reluwatch_layer_units", labels: lbl({ state: "dead" }), value: dead },
    { name: "reluwatch_layer_dead_ratio", labels: lbl(), value: dead / UNITS },
    // Zero-initialised, as the contract asks, so increase() sees the first deaths.
    {
      name: "reluwatch_unit_transitions_total",
      labels: lbl({ from: "mostly_silent", to: "dead" }),
      value: dead,
    },
    {
      name: "reluwatch_unit_transitions_total",
      labels: lbl({ from: "active", to: "mostly_silent" }),
      value: silent + dead,
    },
    { name: "reluwatch_layer_born_dead_units", labels: lbl(), value: layer === DYING ? 1 : 0 },
    { name: "reluwatch_layer_constant_units", labels: lbl(), value: 2 },
    ...FIRING_RATE_BUCKETS.map((le, i) => ({
      name: "reluwatch_layer_units_by_firing_rate",
      labels: lbl({ le }),
      value: cumulative[i]!,
    })),
    { name: "reluwatch_layer_step", labels: lbl(), value: Math.floor(t * 100) },
    { name: "reluwatch_layer_window_samples", labels: lbl(), value: 4096 },
    { name: "reluwatch_layer_stale_ranks", labels: lbl(), value: 0 },
    { name: "reluwatch_layer_nonfinite_values_total", labels: lbl(), value: 0 },
    { name: "reluwatch_layer_dormancy_mean", labels: lbl(), value: layer === DYING ? 0.4 : 0.1 },
    { name: "reluwatch_layer_last_snapshot_timestamp_seconds", labels: lbl(), value: Date.now() / 1000 },
    ...[0, 1, 2].map((u) => ({
      name: "reluwatch_unit_firing_rate",
      labels: lbl({ unit: String(u) }),
      value: u < dead ? 0 : 0.001 * (u + 1),
    })),
  ];
}

function pipelineSamples(t: number): Sample[] {
  const snapshots = Math.floor(t * 20);
  return [
    { name: "reluwatch_snapshots_total", labels: { result: "ok" }, value: snapshots },
    { name: "reluwatch_snapshots_total", labels: { result: "invalid" }, value: 1 },
    { name: "reluwatch_invalid_snapshots_total", labels: { reason: "bad_magic" }, value: 1 },
    {
      name: "reluwatch_snapshot_age_seconds_bucket",
      labels: { le: "0.1" },
      value: Math.floor(snapshots * 0.9),
    },
    { name: "reluwatch_snapshot_age_seconds_bucket", labels: { le: "1" }, value: snapshots },
    { name: "reluwatch_snapshot_age_seconds_bucket", labels: { le: "+Inf" }, value: snapshots },
    { name: "reluwatch_snapshot_age_seconds_sum", value: snapshots * 0.05 },
    { name: "reluwatch_snapshot_age_seconds_count", value: snapshots },
    {
      name: "reluwatch_consumer_lag_messages",
      labels: { topic: "reluwatch.snapshots", partition: "0" },
      value: 3,
    },
    { name: "reluwatch_tracked_units", value: 2 * UNITS },
    { name: "reluwatch_restoring", value: 0 },
  ];
}

describe("observability kit against real Prometheus and Alertmanager", () => {
  let exporter: StaticExporter;
  let webhook: WebhookReceiver;
  let alertmanager: RunningAlertmanager;
  let prometheus: RunningPrometheus;
  const started = Date.now();

  before(async () => {
    exporter = await startStaticExporter(() => {
      const t = (Date.now() - started) / 1000;
      return renderExposition([
        ...layerSamples(DYING, deadUnitsAt(t), t),
        ...layerSamples(HEALTHY, 0, t),
        ...pipelineSamples(t),
      ]);
    });
    webhook = await startWebhookReceiver();
    alertmanager = await startAlertmanager({
      port: ALERTMANAGER_PORT,
      config: alertmanagerConfigForTest(webhook.url),
    });
    prometheus = await startPrometheus({
      port: PROMETHEUS_PORT,
      files: fastRuleFile(),
      config: prometheusConfigForTest({
        targets: [exporter.target],
        ruleFiles: ["reluwatch.rules.yml"],
        alertmanager: `127.0.0.1:${ALERTMANAGER_PORT}`,
      }),
    });
  });

  after(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.stop();
    await exporter?.stop();
  });

  it("delivers ReluUnitsDied and ReluLayerDying for the dying layer, and nothing for the healthy one", async () => {
    const forDying = (name: string) => (a: { labels: Record<string, string> }) =>
      a.labels.alertname === name && a.labels.run === RUN && a.labels.layer === DYING;
    await webhook.waitFor(
      (alerts) => alerts.some(forDying("ReluUnitsDied")) && alerts.some(forDying("ReluLayerDying")),
      60_000,
    );

    const died = webhook.received.find(forDying("ReluUnitsDied"))!;
    assert.equal(died.status, "firing");
    assert.equal(died.labels.severity, "info");
    assert.match(
      died.annotations.description!,
      /^\d+ unit\(s\) of layer fc_dying in run r1 crossed into dead/,
    );
    assert.match(died.annotations.runbook_url!, /#reluunitsdied$/);
    const dying = webhook.received.find(forDying("ReluLayerDying"))!;
    assert.equal(dying.labels.severity, "warning");
    assert.match(dying.annotations.description!, /^\d+% of the units of layer fc_dying in run r1 are dead/);

    // Nothing else fired or is pending, in Prometheus or at the webhook.
    assert.ok(exporter.scrapes > 5, `the exporter was scraped (${exporter.scrapes} times)`);
    const held = await prometheus.alerts();
    for (const a of held) {
      assert.equal(a.labels.layer, DYING, `unexpected alert ${JSON.stringify(a.labels)}`);
      assert.ok(["ReluUnitsDied", "ReluLayerDying"].includes(a.labels.alertname!), a.labels.alertname);
    }
    for (const a of webhook.received) {
      assert.notEqual(a.labels.layer, HEALTHY, `healthy layer alerted: ${JSON.stringify(a.labels)}`);
      assert.ok(["ReluUnitsDied", "ReluLayerDying"].includes(a.labels.alertname!), a.labels.alertname);
    }
  });

  it("every dashboard query returns data for both layers", async () => {
    for (const layer of [DYING, HEALTHY]) {
      const queries = dashboardQueries({ run: RUN, layer, rateInterval: "10s" });
      assert.ok(queries.length >= 25, `found ${queries.length} panel queries`);
      const empty: string[] = [];
      for (const q of queries) {
        const result = await prometheus.query(q.expr);
        if (result.length === 0) empty.push(`${q.dashboard} / ${q.panel}: ${q.expr}`);
      }
      assert.deepEqual(empty, [], `panels without data for layer ${layer}`);
    }
  });

  it("every dashboard variable offers the run and layers being exported", async () => {
    const queries = variableQueries({ run: RUN, layer: DYING });
    assert.equal(queries.length, 4);
    for (const q of queries) {
      const values = (await prometheus.query(q.expr)).map((s) => s.metric[q.variable]).sort();
      assert.deepEqual(
        values,
        q.variable === "run" ? [RUN] : [DYING, HEALTHY],
        `${q.dashboard} $${q.variable}`,
      );
    }
  });
});
