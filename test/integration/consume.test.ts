import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeTransition } from "../../src/codec/index.js";
import {
  CONSUME_GROUPS,
  KAFKA_CLIENTS,
  type KafkaClient,
  loadSettings,
  type Settings,
} from "../../src/config/index.js";
import type { UnitState, UnitTransition } from "../../src/core/index.js";
import { createLogger } from "../../src/log.js";
import { type ConsumerService, startConsumerService } from "../../src/service/consumer-service.js";
import { DEFAULT_EVENT_POLICY, type EventPolicy } from "../../src/sink/event-policy.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { waitFor } from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";

const STATES: UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];

async function readEvents(broker: TestBroker, topic: string, expected: number): Promise<UnitTransition[]> {
  const consumer = kafkaClient(broker).consumer({ groupId: `${topic}.reader.${Date.now()}` });
  const events: UnitTransition[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => void events.push(decodeTransition(message.value!)),
  });
  try {
    await waitFor(
      `${expected} transition events`,
      () => (events.length >= expected ? true : undefined),
      60_000,
    );
    return events;
  } finally {
    await consumer.disconnect();
  }
}

function consumeSettings(
  broker: TestBroker,
  topic: string,
  policy: EventPolicy,
  client: KafkaClient,
): Settings {
  return loadSettings({
    flags: {
      kafkaClient: client,
      startFrom: "earliest",
      brokers: broker.brokers.join(","),
      topic,
      group: `${topic}.group.${policy}`,
      eventsTopic: `${topic}.events.${policy}`,
      deadLetterTopic: `${topic}.dlq`,
      metricsPort: "0",
      metricsHost: "127.0.0.1",
      // The default policy is what an unset setting gives; "all" is asked for.
      ...(policy === DEFAULT_EVENT_POLICY ? {} : { events: policy }),
    },
    env: {},
    groups: CONSUME_GROUPS,
  });
}

for (const client of KAFKA_CLIENTS)
  describe(`reluwatch consume against a real broker (${client})`, () => {
    let broker: TestBroker;
    const services: ConsumerService[] = [];
    after(async () => {
      for (const s of services) await s.stop();
    });
    before(async () => {
      broker = await getBroker();
    });

    test("simulate → consume → /metrics shows exactly the offline detector's verdicts; the events topic carries what the events setting selects", async () => {
      const topic = uniqueTopic("consume");
      await createTopic(broker, topic, 3);
      const policies: EventPolicy[] = ["deaths", "all"];
      assert.equal(DEFAULT_EVENT_POLICY, "deaths");
      for (const policy of policies) await createTopic(broker, `${topic}.events.${policy}`, 1);
      const snapshots = scenarioSnapshots("lr-spike", { seed: 7 });
      await produceSnapshots(kafkaClient(broker), topic, snapshots);

      // Two consumer groups over the same snapshots: one per events policy.
      const bases = new Map<EventPolicy, string>();
      for (const policy of policies) {
        const settings = consumeSettings(broker, topic, policy, client);
        assert.equal(settings.events, policy);
        assert.equal(settings.kafka.kafka_client, client);
        const service = await startConsumerService(settings, createLogger("test", "warn"));
        services.push(service);
        bases.set(policy, `http://127.0.0.1:${service.address.port}`);
      }
      const reference = referenceDetector(snapshots);
      const summaries = reference.detector.summaries();
      assert.ok(summaries.length > 0);
      const living = reference.transitions.filter((t) => t.from === "UNKNOWN" && t.to !== "DEAD");
      assert.ok(living.length > 0, "the scenario has first verdicts of living units");

      for (const policy of policies) {
        const base = bases.get(policy)!;
        const { samples } = await waitFor(`every snapshot applied (events ${policy})`, async () => {
          const s = await scrape(base);
          return sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }) === snapshots.length
            ? s
            : undefined;
        });

        let referenceDeaths = 0;
        for (const s of summaries) {
          for (const state of STATES) {
            const exported = sumOf(samples, "reluwatch_layer_units", {
              run: s.run_id,
              layer: s.layer,
              state: state.toLowerCase(),
            });
            assert.equal(exported, s.units_by_state[state], `${s.layer} ${state}`);
          }
          assert.equal(
            sumOf(samples, "reluwatch_layer_window_samples", { run: s.run_id, layer: s.layer }),
            s.window_samples,
          );
          referenceDeaths += s.units_by_state.DEAD;
        }
        assert.ok(referenceDeaths > 0, "the scenario kills units");
        assert.equal(sumOf(samples, "reluwatch_unit_transitions_total", { to: "dead" }), referenceDeaths);
        // First verdicts are counted whether or not they are events.
        for (const to of ["ACTIVE", "MOSTLY_SILENT"] as const) {
          assert.equal(
            sumOf(samples, "reluwatch_unit_transitions_total", { from: "unknown", to: to.toLowerCase() }),
            living.filter((t) => t.to === to).length,
            `first verdicts ${to} (events ${policy})`,
          );
        }

        const expected = policy === "all" ? reference.transitions : reference.events;
        if (policy === "deaths") {
          assert.ok(expected.length > 0 && expected.length < reference.transitions.length);
          assert.ok(expected.every((t) => t.from === "DEAD" || t.to === "DEAD"));
          assert.ok(
            expected.some((t) => t.to === "DEAD" && t.from !== "UNKNOWN"),
            "deaths are events",
          );
        }
        const emitted = await readEvents(broker, `${topic}.events.${policy}`, expected.length);
        assert.equal(emitted.length, expected.length, `events ${policy}`);
        const key = (t: UnitTransition) => `${t.layer}/${t.unit}/${t.from}/${t.to}/${t.step}`;
        assert.deepEqual(new Set(emitted.map(key)), new Set(expected.map(key)));
        const res = await fetch(`${base}/readyz`);
        assert.equal(res.status, 200);
      }
    });

    test("real training traffic (micro-batches, a crash and resume, NaN units and sums) matches the offline detector", async () => {
      const topic = uniqueTopic("consume-traffic");
      const events = `${topic}.events`;
      await createTopic(broker, topic, 2);
      await createTopic(broker, events, 1);
      const snapshots = scenarioSnapshots("crash-resume", {
        seed: 3,
        units: 64,
        micro_batches: 2,
        samples: 256,
        sums: true,
        nan_sum_rate: 0.2,
        nan_units: [{ layer: 2, fraction: 0.1, step: 700 }],
      });
      await produceSnapshots(kafkaClient(broker), topic, snapshots);
      const reference = referenceDetector(snapshots);
      const expected = reference.detector.summaries();
      const late = expected.reduce((n, s) => n + s.late_total, 0);
      assert.ok(late > 0, "the replaced timeline's stragglers are late");

      const traffic = await startConsumerService(
        loadSettings({
          flags: {
            kafkaClient: client,
            startFrom: "earliest",
            brokers: broker.brokers.join(","),
            topic,
            group: `${topic}.group`,
            eventsTopic: events,
            deadLetterTopic: `${topic}.dlq`,
            metricsPort: "0",
            metricsHost: "127.0.0.1",
          },
          env: {},
          groups: CONSUME_GROUPS,
        }),
        createLogger("test", "warn"),
      );
      try {
        const base = `http://127.0.0.1:${traffic.address.port}`;
        const { samples } = await waitFor("every snapshot applied or dropped as late", async () => {
          const s = await scrape(base);
          const seen =
            sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }) +
            sumOf(s.samples, "reluwatch_snapshots_total", { result: "late" });
          return seen === snapshots.length ? s : undefined;
        });
        assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "late" }), late);
        assert.equal(
          sumOf(samples, "reluwatch_snapshots_total", { result: "invalid" }),
          0,
          "NaN sums are no dead letters",
        );
        for (const s of expected) {
          const at = { run: s.run_id, layer: s.layer };
          for (const state of STATES) {
            assert.equal(
              sumOf(samples, "reluwatch_layer_units", { ...at, state: state.toLowerCase() }),
              s.units_by_state[state],
              `${s.layer} ${state}`,
            );
          }
          assert.equal(
            sumOf(samples, "reluwatch_layer_nonfinite_values_total", at),
            s.nonfinite_values_total,
          );
          assert.equal(sumOf(samples, "reluwatch_layer_checkpoint_resumes_total", at), 1);
        }
        assert.ok(expected.every((s) => s.nonfinite_values_total > 0));
        assert.ok(reference.events.length > 0, "the scenario has deaths to emit");
        const emitted = await readEvents(broker, events, reference.events.length);
        const key = (t: UnitTransition) => `${t.layer}/${t.unit}/${t.from}/${t.to}/${t.step}`;
        assert.deepEqual(new Set(emitted.map(key)), new Set(reference.events.map(key)));
      } finally {
        await traffic.stop();
      }
    });
  });
