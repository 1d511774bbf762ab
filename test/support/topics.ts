/**
 * Reading whole topics and group offsets back, for tests that must count what
 * the consumer wrote (events, dead letters) exactly rather than wait for "at
 * least N": reading up to the high watermarks sees duplicates too.
 */
import assert from "node:assert/strict";
import type { Kafka, KafkaMessage } from "kafkajs";
import { decodeTransition } from "../../src/codec/index.js";
import type { LayerSummary, UnitState, UnitTransition } from "../../src/core/index.js";
import { waitFor } from "./consumer-process.js";
import { type Sample, sumOf } from "./metrics.js";

export type ReadMessage = KafkaMessage & { partition: number };

/** The high watermark of every partition of a topic. */
export async function endOffsets(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Committed offsets of a group on a topic (-1 where nothing was committed). */
export async function committedOffsets(
  kafka: Kafka,
  group: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the group has committed every partition of the topic up to its end. */
export async function waitForCommittedToEnd(
  kafka: Kafka,
  group: string,
  topic: string,
  timeoutMs = 60_000,
): Promise<void> {
  const end = await endOffsets(kafka, topic);
  await waitFor(
    `group ${group} to commit ${topic} to its end`,
    async () => {
      const committed = await committedOffsets(kafka, group, topic);
      for (const [p, high] of end) if (high > 0n && committed.get(p) !== high) return undefined;
      return true;
    },
    timeoutMs,
  );
}

/** Every message on the topic now: from the beginning up to the high watermarks read at the start. */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const pending = new Map<number, bigint>();
  for (const o of offsets) if (BigInt(o.high) > BigInt(o.low)) pending.set(o.partition, BigInt(o.high));
  const messages: ReadMessage[] = [];
  if (pending.size === 0) return messages;

  const consumer = kafka.consumer({
    groupId: `${topic}.reader.${process.pid}.${Date.now()}`,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = pending.get(partition);
        if (end === undefined || BigInt(message.offset) >= end) return;
        messages.push({ ...message, partition });
        if (BigInt(message.offset) + 1n >= end) pending.delete(partition);
      },
    });
    await waitFor(`reading ${topic} to its end`, () => (pending.size === 0 ? true : undefined), timeoutMs);
    return messages;
  } finally {
    await consumer.disconnect();
  }
}

const STATES: UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];

/** Asserts that the exposition's layer units per state and window samples equal the reference's, layer by layer. */
export function assertLayersMatch(samples: Sample[], reference: LayerSummary[]): void {
  assert.ok(reference.length > 0, "the reference has layers");
  for (const s of reference) {
    const where = { run: s.run_id, layer: s.layer };
    for (const state of STATES) {
      assert.equal(
        sumOf(samples, "reluwatch_layer_units", { ...where, state: state.toLowerCase() }),
        s.units_by_state[state],
        `${s.run_id}/${s.layer} units ${state}`,
      );
    }
    assert.equal(
      sumOf(samples, "reluwatch_layer_window_samples", where),
      s.window_samples,
      `${s.run_id}/${s.layer} window samples`,
    );
  }
}

/**
 * Cumulative transitions by from and to, deaths and born-dead units per layer: what a lost state
 * would double or invent. Deaths are from a living state; a born-dead verdict comes from unknown.
 */
export function assertCountersMatch(samples: Sample[], reference: LayerSummary[]): void {
  for (const s of reference) {
    const where = { run: s.run_id, layer: s.layer };
    for (const { from, to, count } of s.transitions_total) {
      assert.equal(
        sumOf(samples, "reluwatch_unit_transitions_total", {
          ...where,
          from: from.toLowerCase(),
          to: to.toLowerCase(),
        }),
        count,
        `${s.run_id}/${s.layer} transitions ${from} -> ${to}`,
      );
    }
    assert.equal(
      sumOf(samples, "reluwatch_unit_transitions_total", where),
      s.transitions_total.reduce((n, t) => n + t.count, 0),
      `${s.run_id}/${s.layer} transitions, all`,
    );
    assert.equal(
      sumOf(samples, "reluwatch_unit_transitions_total", { ...where, from: "active", to: "dead" }) +
        sumOf(samples, "reluwatch_unit_transitions_total", { ...where, from: "mostly_silent", to: "dead" }),
      s.deaths_total,
      `${s.run_id}/${s.layer} deaths`,
    );
    assert.equal(
      sumOf(samples, "reluwatch_layer_born_dead_units", where),
      s.born_dead_units,
      `${s.run_id}/${s.layer} born dead`,
    );
  }
}

/** True when the exposition's numbers equal the reference's (the waitFor form of assertLayersMatch). */
export function layersMatch(samples: Sample[], reference: LayerSummary[]): boolean {
  try {
    assertLayersMatch(samples, reference);
    return true;
  } catch {
    return false;
  }
}

/** What makes a transition event distinct: the same key twice means it was emitted twice. */
export function transitionKey(t: UnitTransition): string {
  return JSON.stringify([t.run_id, t.layer, t.unit, t.from, t.to, t.step]);
}

/** The events topic holds exactly the expected transitions, none of them twice. */
export async function assertEventsExactlyOnce(
  kafka: Kafka,
  events: string,
  expected: readonly UnitTransition[],
): Promise<void> {
  const emitted = (await readTopic(kafka, events)).map((m) => decodeTransition(m.value!));
  const keys = emitted.map(transitionKey);
  assert.equal(new Set(keys).size, keys.length, "no transition event was emitted twice");
  assert.equal(emitted.length, expected.length);
  assert.deepEqual(new Set(keys), new Set(expected.map(transitionKey)));
}
