/**
 * Waits until the brokers answer and a topic exists with a leader on every
 * partition. The monitoring service is usually started before the training
 * job that creates its topic, and a broker may still be starting: both are
 * waited out with capped exponential backoff, with a log line naming what is
 * missing, instead of failing. Conditions that no amount of waiting fixes
 * (refused credentials, no ACL, a topic name Kafka refuses) end the wait at
 * once with their `KafkaError`.
 *
 * It probes with a client of its own that does not retry, so each attempt
 * takes one connection timeout at most and the schedule below is the only
 * one; with kafkajs's default retries a single attempt against a missing
 * broker takes over a minute and logs a dozen errors.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Kafka, logLevel } from "kafkajs";
import type { KafkaSettings } from "../config/load.js";
import type { Logger } from "../log.js";
import { kafkaConfigFrom } from "./kafka-client.js";
import { KafkaError, kafkaConditionOf } from "./kafka-errors.js";

export interface TopicWaitOptions {
  /** Wait for this topic too; without it, only for the brokers. */
  topic?: string;
  /** Give up after this long with the last condition seen; undefined waits for ever. */
  timeoutMs?: number;
  /** First pause between attempts; it doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A condition still unchanged is logged again after this long. */
  relogMs?: number;
  signal?: AbortSignal;
  log: Logger;
  /** Told what is being waited for (a sentence naming the topic or brokers), and undefined once done. */
  onWaiting?: (reason: string | undefined) => void;
}

export const TOPIC_WAIT_DEFAULTS = { initialBackoffMs: 500, maxBackoffMs: 10_000, relogMs: 60_000 };

/** Resolves once the brokers answer and the topic (if any) is ready; rejects with a KafkaError otherwise. */
export async function waitForTopic(settings: KafkaSettings, opts: TopicWaitOptions): Promise<void> {
  const initialBackoffMs = opts.initialBackoffMs ?? TOPIC_WAIT_DEFAULTS.initialBackoffMs;
  const maxBackoffMs = opts.maxBackoffMs ?? TOPIC_WAIT_DEFAULTS.maxBackoffMs;
  const relogMs = opts.relogMs ?? TOPIC_WAIT_DEFAULTS.relogMs;
  const ctx = { brokers: settings.brokers, topic: opts.topic };
  const kafka = new Kafka({
    ...kafkaConfigFrom(settings),
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const started = Date.now();
  let backoff = initialBackoffMs;
  let lastCode: string | undefined;
  let lastLogged = 0;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    const condition = await probe(kafka, opts.topic).then(
      () => undefined,
      (err: unknown) => kafkaConditionOf(err, ctx),
    );
    if (!condition) {
      if (lastCode)
        opts.log.info({ event: "kafka_ready", topic: opts.topic, attempt }, "done waiting for Kafka");
      opts.onWaiting?.(undefined);
      return;
    }
    if (!condition.waitable) throw condition;
    const waited = Date.now() - started;
    if (opts.timeoutMs !== undefined && waited >= opts.timeoutMs) {
      throw new KafkaError(condition.code, `${condition.message} (gave up after ${seconds(waited)})`, {
        cause: condition,
      });
    }
    // The last pause ends at the deadline, so giving up happens on time after one more attempt.
    const pause =
      opts.timeoutMs === undefined ? backoff : Math.min(backoff, Math.max(0, opts.timeoutMs - waited));
    const reason = waitingReason(condition, settings.brokers, opts.topic);
    opts.onWaiting?.(reason);
    if (condition.code !== lastCode || Date.now() - lastLogged >= relogMs) {
      opts.log.warn(
        {
          event: "waiting_for_kafka",
          code: condition.code,
          topic: opts.topic,
          brokers: settings.brokers,
          attempt,
          retry_in_ms: pause,
        },
        reason,
      );
      lastCode = condition.code;
      lastLogged = Date.now();
    }
    await sleep(pause, undefined, { signal: opts.signal });
    backoff = Math.min(maxBackoffMs, backoff * 2);
  }
}

async function probe(kafka: Kafka, topic: string | undefined): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    if (topic === undefined) return;
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = topics.find((t) => t.name === topic)?.partitions ?? [];
    if (partitions.length === 0 || partitions.some((p) => p.leader < 0)) {
      throw new KafkaError("TOPIC_NOT_READY", `topic ${topic} has no partition leader yet`);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function waitingReason(condition: KafkaError, brokers: readonly string[], topic: string | undefined): string {
  const where = brokers.join(",");
  if (condition.code === "TOPIC_NOT_FOUND") return `waiting for topic ${topic} to be created on ${where}`;
  if (condition.code === "TOPIC_NOT_READY")
    return `waiting for topic ${topic} on ${where} to get partition leaders`;
  return `waiting for Kafka: ${condition.message}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
