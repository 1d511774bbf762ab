/**
 * The whole alerting path with the real components: the broker, `reluwatch
 * consume` as a child process, Prometheus scraping it with the shipped rules
 * (test-sized `for:` and rising windows), and Alertmanager with the shipped
 * routing, delivering to a webhook served here. A simulated run has three
 * layers; one of them loses about a fifth of its units. The snapshots go out
 * in two phases, healthy then dying, so Prometheus has scraped the layer alive
 * before the deaths arrive, as it would in production.
 *
 * Then every PromQL expression of the dashboards runs against that Prometheus
 * and must return data, per-unit series and invalid snapshots included.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dashboardQueries, variableQueries } from "../../deploy/grafana/queries.js";
import { THRESHOLDS } from "../../deploy/prometheus/rules.js";
import { generateFleet, layerName, resolveScenario, runId } from "../../src/sim/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import { freePorts } from "../support/ports.js";
import {
  alertmanagerConfigForTest,
  fastRuleFile,
  prometheusConfigForTest,
  promtoolCheckMetrics,
  type RunningAlertmanager,
  type RunningPrometheus,
  startAlertmanager,
  startPrometheus,
  startWebhookReceiver,
  type WebhookAlert,
  type WebhookReceiver,
} from "../support/prometheus.js";

const DEATH_STEP = 600;
const DYING_LAYER_INDEX = 1;

const scenario = resolveScenario("lr-spike", {
  seed: 3,
  units: 64,
  layers: 3,
  ranks: 2,
  steps: 1400,
  interval: 50,
  samples: 1024,
  // abs_sum feeds the dormancy panel.
  sums: true,
  deaths: [{ layer: DYING_LAYER_INDEX, fraction: 0.2, step: DEATH_STEP }],
  // Trainer clocks near now, so snapshot ages are realistic.
  start_time: Date.now(),
  step_ms: 10,
});
const RUN = runId(scenario, 0);
const DYING = layerName(DYING_LAYER_INDEX);
const HEALTHY = [0, 2].map(layerName);
/** prom-client default gauges whose names promtool's lint rejects. */
const UPSTREAM_LINT = new Set([
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
]);
const EXPECTED_ALERTS = ["ReluUnitsDied", "ReluLayerDying", "ReluwatchInvalidSnapshots"];

const forLayer = (name: string, layer: string) => (a: WebhookAlert) =>
  a.labels.alertname === name && a.labels.run === RUN && a.labels.layer === layer;

describe("alerts end to end: simulate → Kafka → reluwatch consume → Prometheus → Alertmanager → webhook", () => {
  let broker: TestBroker;
  let consumer: ConsumerProcess | undefined;
  let webhook: WebhookReceiver | undefined;
  let alertmanager: RunningAlertmanager | undefined;
  let prometheus: RunningPrometheus | undefined;
  let invalidReason = "";
  const snapshots = [...generateFleet(scenario)];

  before(async () => {
    broker = await getBroker();
    const topic = uniqueTopic("alerts");
    for (const t of [topic, `${topic}.events`, `${topic}.dlq`]) await createTopic(broker, t, 1);
    consumer = await startConsumerProcess([...consumerArgs(broker.brokers, topic), "--unit-series"]);
    webhook = await startWebhookReceiver();
    const [prometheusPort, alertmanagerPort] = (await freePorts(2)) as [number, number];
    alertmanager = await startAlertmanager({
      port: alertmanagerPort,
      config: alertmanagerConfigForTest(webhook.url),
    });
    prometheus = await startPrometheus({
      port: prometheusPort,
      files: fastRuleFile(),
      config: prometheusConfigForTest({
        targets: [new URL(consumer.baseUrl).host],
        ruleFiles: ["reluwatch.rules.yml"],
        alertmanager: `127.0.0.1:${alertmanagerPort}`,
      }),
    });
    const prom = prometheus;
    const kafka = kafkaClient(broker);

    // Every reject reason starts at 0; Prometheus must have seen that before the
    // bad message below, or rate() has nothing to rise from.
    await waitFor("Prometheus scraped the consumer", async () => {
      const r = await prom.query("reluwatch_invalid_snapshots_total == 0");
      return r.length > 0 ? true : undefined;
    });

    // Phase 1: the healthy part of the run, and one message that is not a snapshot.
    const healthy = snapshots.filter((s) => s.step < DEATH_STEP);
    await produceSnapshots(kafka, topic, healthy);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: "bad", value: Buffer.from("not a snapshot") }] });
    await producer.disconnect();
    const base = consumer.baseUrl;
    await waitFor("the healthy phase applied", async () => {
      const { samples } = await scrape(base);
      return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === healthy.length &&
        sumOf(samples, "reluwatch_snapshots_total", { result: "invalid" }) === 1
        ? true
        : undefined;
    });
    // Prometheus must hold the dying layer's death counters at 0 before they rise.
    await waitFor("Prometheus scraped the zero death counters", async () => {
      const r = await prom.query(
        `count_over_time(reluwatch_unit_transitions_total{run="${RUN}", layer="${DYING}", to="dead"}[1m]) >= 2`,
      );
      return r.length === 3 ? true : undefined;
    });

    // Phase 2: the deaths and enough steps after them for buckets to close.
    await produceSnapshots(
      kafka,
      topic,
      snapshots.filter((s) => s.step >= DEATH_STEP),
    );
    const { samples } = await waitFor("every snapshot applied", async () => {
      const s = await scrape(base);
      return sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }) === snapshots.length
        ? s
        : undefined;
    });
    invalidReason =
      samples.find((s) => s.name === "reluwatch_invalid_snapshots_total" && s.value > 0)?.labels.reason ?? "";
  });

  after(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.stop();
    if (consumer && consumer.child.exitCode === null) {
      consumer.child.kill("SIGTERM");
      await consumer.exited;
    }
  });

  it("the scenario is what the test claims: one layer past the warning ratio, below critical; the others without deaths", () => {
    // The offline detector, the consumer's own logic run here: proves the setup, not the pipeline.
    const reference = referenceDetector(snapshots);
    const ratio = new Map(reference.detector.summaries().map((s) => [s.layer, s.dead_ratio]));
    assert.ok(ratio.get(DYING)! >= THRESHOLDS.deadRatioWarning, `dying ratio ${ratio.get(DYING)}`);
    assert.ok(ratio.get(DYING)! < THRESHOLDS.deadRatioCritical, `dying ratio ${ratio.get(DYING)}`);
    for (const layer of HEALTHY) assert.equal(ratio.get(layer), 0, layer);
    assert.notEqual(invalidReason, "", "the bad message was counted under a reason");
  });

  it("delivers ReluUnitsDied and ReluLayerDying for the dying layer, and nothing for the healthy ones", async () => {
    const hook = webhook!;
    await hook.waitFor(
      (alerts) =>
        alerts.some(forLayer("ReluUnitsDied", DYING)) &&
        alerts.some(forLayer("ReluLayerDying", DYING)) &&
        alerts.some((a) => a.labels.alertname === "ReluwatchInvalidSnapshots"),
      // Only turns a missing alert into a failure; the conditions above are what is waited for.
      180_000,
    );

    const died = hook.received.find(forLayer("ReluUnitsDied", DYING))!;
    assert.equal(died.status, "firing");
    assert.equal(died.labels.severity, "info");
    const deaths = Number(/^(\d+) unit\(s\) of layer /.exec(died.annotations.description!)?.[1]);
    assert.ok(deaths > 0, died.annotations.description);
    assert.match(
      died.annotations.description!,
      new RegExp(`of layer ${DYING} in run ${RUN} crossed into dead`),
    );
    assert.match(died.annotations.runbook_url!, /#reluunitsdied$/);

    const dying = hook.received.find(forLayer("ReluLayerDying", DYING))!;
    assert.equal(dying.labels.severity, "warning");
    assert.match(
      dying.annotations.description!,
      new RegExp(`of the units of layer ${DYING} in run ${RUN} are dead`),
    );

    const invalid = hook.received.find((a) => a.labels.alertname === "ReluwatchInvalidSnapshots")!;
    assert.equal(invalid.labels.reason, invalidReason);

    // The death count in the alert is what the consumer exported.
    const { samples } = await scrape(consumer!.baseUrl);
    const exported = sumOf(samples, "reluwatch_unit_transitions_total", { layer: DYING, to: "dead" });
    assert.ok(exported > 0 && deaths >= exported, `alert says ${deaths}, exporter ${exported}`);
  });

  it("every dashboard query returns data for the dying and the healthy layers", async () => {
    const prom = prometheus!;
    for (const layer of [DYING, ...HEALTHY]) {
      // Sixty 1 s scrapes per window: a few late or dropped scrapes still leave a rate to compute.
      const queries = dashboardQueries({ run: RUN, layer, rateInterval: "1m" });
      assert.ok(
        queries.some((q) => q.optIn),
        "the opt-in per-unit panel is among them",
      );
      const empty: string[] = [];
      for (const q of queries) {
        if ((await prom.query(q.expr)).length === 0) empty.push(`${q.dashboard} / ${q.panel}: ${q.expr}`);
      }
      assert.deepEqual(empty, [], `panels without data for layer ${layer}`);
    }
  });

  it("every dashboard variable offers the run and its layers", async () => {
    const queries = variableQueries({ run: RUN, layer: DYING });
    assert.ok(queries.length > 0);
    for (const q of queries) {
      const values = (await prometheus!.query(q.expr)).map((s) => s.metric[q.variable]).sort();
      assert.deepEqual(values, q.variable === "run" ? [RUN] : [DYING, ...HEALTHY].sort(), q.template);
    }
  });

  it("the live /metrics of reluwatch consume passes promtool check metrics", async () => {
    const { text } = await scrape(consumer!.baseUrl);
    assert.match(text, /^process_cpu_seconds_total /m, "process metrics included");
    // prom-client names three of its default Node.js gauges *_total, which
    // promtool's lint flags; they are upstream names, not this exporter's.
    const findings = promtoolCheckMetrics(text).output.split("\n").filter(Boolean);
    const ours = findings.filter((line) => !UPSTREAM_LINT.has(line.split(" ")[0]!));
    assert.deepEqual(ours, [], "promtool findings outside prom-client's defaults");
    const reluwatchOnly = text
      .split("\n")
      .filter((l) => /^(# (HELP|TYPE) )?reluwatch_/.test(l) || l === "")
      .join("\n");
    assert.match(reluwatchOnly, /^reluwatch_unit_firing_rate\{/m);
    const check = promtoolCheckMetrics(reluwatchOnly);
    assert.equal(check.status, 0, `promtool check metrics:\n${check.output}`);
  });

  it("no other alert fired, and none for a healthy layer", async () => {
    const held = await prometheus!.alerts();
    for (const a of [...held.map((h) => h.labels), ...webhook!.received.map((r) => r.labels)]) {
      assert.ok(EXPECTED_ALERTS.includes(a.alertname!), `unexpected alert ${JSON.stringify(a)}`);
      if (a.layer !== undefined)
        assert.equal(a.layer, DYING, `alert for a healthy layer: ${JSON.stringify(a)}`);
    }
    assert.ok(held.some((a) => a.labels.alertname === "ReluUnitsDied" && a.state === "firing"));
  });
});
