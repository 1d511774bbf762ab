/**
 * The two Kafka outputs of the consumer: transition events (UnitTransition,
 * keyed like snapshots so a layer's events stay in order) and the dead-letter
 * topic (the offending message unchanged, the error in headers). Both go
 * through one idempotent producer and are flushed before offsets are committed,
 * so nothing is lost across a crash (at-least-once).
 */
import type { Kafka, Message, Producer } from "kafkajs";
import { encodeTransition } from "../codec/index.js";
import { layerKey, type UnitTransition } from "../core/snapshot.js";

/** Header names on dead-lettered messages; documented in docs/errors.md. */
export const DEAD_LETTER_HEADERS = {
  code: "reluwatch-error-code",
  message: "reluwatch-error-message",
  topic: "reluwatch-source-topic",
  partition: "reluwatch-source-partition",
  offset: "reluwatch-source-offset",
} as const;

/**
 * Most messages per produce call. kafkajs groups a call's messages by partition
 * with an array copy per message, quadratic in the call's size: the first
 * verdicts of a few 4096-unit layers (one event per unit) in one call cost
 * seconds of CPU, in chunks of this size milliseconds.
 */
export const MAX_MESSAGES_PER_SEND = 1000;

export interface DeadLetterRecord {
  reason: string;
  message: string;
  source: { topic: string; partition: number; offset: string };
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | undefined>;
}

export class KafkaSinks {
  private readonly producer: Producer;

  constructor(
    kafka: Kafka,
    private readonly eventsTopic: string,
    private readonly deadLetterTopic: string,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: true,
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Writes one batch worth of events and dead letters; resolves when the broker acknowledged all. */
  async write(
    transitions: readonly UnitTransition[],
    deadLetters: readonly DeadLetterRecord[],
  ): Promise<void> {
    const events = transitions.map(
      (t): Message => ({ key: layerKey(t.run_id, t.layer), value: encodeTransition(t) }),
    );
    // In order, one chunk after the other, so a layer's events keep their order on their partition.
    for (const [topic, messages] of [
      [this.eventsTopic, events],
      [this.deadLetterTopic, deadLetters.map(toDeadLetterMessage)],
    ] as const) {
      for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_SEND) {
        await this.producer.send({ topic, messages: messages.slice(i, i + MAX_MESSAGES_PER_SEND), acks: -1 });
      }
    }
  }
}

function toDeadLetterMessage(d: DeadLetterRecord): Message {
  const headers: Record<string, Buffer | string> = {};
  for (const [k, v] of Object.entries(d.headers ?? {})) if (v !== undefined) headers[k] = v;
  headers[DEAD_LETTER_HEADERS.code] = d.reason;
  // Header values should stay small; the full message is in the service log.
  headers[DEAD_LETTER_HEADERS.message] = d.message.slice(0, 1000);
  headers[DEAD_LETTER_HEADERS.topic] = d.source.topic;
  headers[DEAD_LETTER_HEADERS.partition] = String(d.source.partition);
  headers[DEAD_LETTER_HEADERS.offset] = d.source.offset;
  return { key: d.key, value: d.value, headers };
}
