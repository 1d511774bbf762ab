/**
 * The two Kafka outputs of the consumer: transition events (UnitTransition,
 * keyed like snapshots so a layer's events stay in order; those the `events`
 * setting selects, see event-policy.ts) and the dead-letter
 * topic (the offending message unchanged, the error in headers). Both go
 * through one idempotent producer and are flushed before offsets are committed,
 * so nothing is lost across a crash (at-least-once). Under exactly_once
 * the same records go into the stream task's transaction instead
 * (`transactionalSends`).
 */
import type { Kafka, Message, Producer } from "kafkajs";
import { encodeTransition } from "../codec/index.js";
import { layerKey, type UnitTransition } from "../core/snapshot.js";
import { type EventPolicy, selectEvents } from "./event-policy.js";
import type { TransactionalMessage } from "./transactional-producer.js";

/** Header names on dead-lettered messages; documented in docs/errors.md. */
export const DEAD_LETTER_HEADERS = {
  code: "reluwatch-error-code",
  message: "reluwatch-error-message",
  topic: "reluwatch-source-topic",
  partition: "reluwatch-source-partition",
  offset: "reluwatch-source-offset",
  /** Set instead of the value when the dead-letter topic refused the message for its size: the original byte length. */
  valueDropped: "reluwatch-value-dropped-bytes",
} as const;

/**
 * Bytes of messages sent in one produce request. A broker checks its
 * message.max.bytes against a whole record batch, and kafkajs puts every
 * message for one partition of a request into one batch: several large bad
 * messages from one fetch, or the events of a large layer changing state at
 * once, would be refused together (a non-retriable error that stopped the
 * consumer) although each message alone fits. Half of Kafka's default 1 MiB
 * limit leaves room for record overhead on topics left at defaults.
 */
const REQUEST_BYTES = 512 * 1024;

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
    private readonly policy: EventPolicy,
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

  /**
   * Writes one batch worth of events (the transitions the policy selects) and
   * dead letters; resolves when the broker acknowledged all.
   */
  async write(
    transitions: readonly UnitTransition[],
    deadLetters: readonly DeadLetterRecord[],
  ): Promise<void> {
    // A layer of many units can change state all at once: tens of thousands of events.
    for (const group of groupBySize(this.eventMessages(transitions), REQUEST_BYTES)) {
      await this.producer.send({ topic: this.eventsTopic, acks: -1, messages: group });
    }
    for (const group of groupBySize(deadLetters.map(toDeadLetterMessage), REQUEST_BYTES)) {
      try {
        await this.producer.send({ topic: this.deadLetterTopic, acks: -1, messages: group });
      } catch (err) {
        if (group.length > 1 || !isTooLarge(err)) throw err;
        // One message larger than the dead-letter topic accepts: keep its headers (the source
        // topic, partition and offset still locate it) rather than stall the partition forever.
        const [message] = group as [Message];
        const size = Buffer.byteLength(message.value ?? "");
        await this.producer.send({
          topic: this.deadLetterTopic,
          acks: -1,
          messages: [
            {
              ...message,
              value: null,
              headers: { ...message.headers, [DEAD_LETTER_HEADERS.valueDropped]: String(size) },
            },
          ],
        });
      }
    }
  }

  /**
   * The same records as `write`, as produce requests of one transaction. A
   * failed send fails the whole transaction, so a dead letter too large for a
   * request is not tried first: it goes without its value (the header says
   * how many bytes it had), as `write` does after the broker refused it.
   */
  transactionalSends(
    transitions: readonly UnitTransition[],
    deadLetters: readonly DeadLetterRecord[],
  ): TransactionalMessage[][] {
    const events = groupBySize(this.eventMessages(transitions), REQUEST_BYTES).map((g) =>
      g.map((m) => toTransactional(this.eventsTopic, m)),
    );
    const letters = deadLetters.map((d) => {
      const m = toDeadLetterMessage(d);
      const size = Buffer.byteLength(m.value ?? "");
      if (size + 4096 <= REQUEST_BYTES) return m;
      return {
        ...m,
        value: null,
        headers: { ...m.headers, [DEAD_LETTER_HEADERS.valueDropped]: String(size) },
      };
    });
    return [
      ...events,
      ...groupBySize(letters, REQUEST_BYTES).map((g) =>
        g.map((m) => toTransactional(this.deadLetterTopic, m)),
      ),
    ];
  }

  private eventMessages(transitions: readonly UnitTransition[]): Message[] {
    return selectEvents(this.policy, transitions).map(
      (t): Message => ({ key: layerKey(t.run_id, t.layer), value: encodeTransition(t) }),
    );
  }
}

function toTransactional(topic: string, m: Message): TransactionalMessage {
  const headers: Record<string, Buffer | string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {}))
    if (typeof v === "string" || Buffer.isBuffer(v)) headers[k] = v;
  return {
    topic,
    key: (m.key ?? null) as Buffer | string | null,
    value: (m.value ?? null) as Buffer | null,
    headers,
  };
}

/** Splits messages into produce calls of at most `budget` bytes and MAX_MESSAGES_PER_SEND messages. */
function groupBySize(messages: Message[], budget: number): Message[][] {
  const groups: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    let size = Buffer.byteLength(m.value ?? "") + Buffer.byteLength(m.key ?? "") + 64;
    for (const [k, v] of Object.entries(m.headers ?? {})) {
      for (const part of [v ?? ""].flat()) size += k.length + Buffer.byteLength(part);
    }
    if (current.length > 0 && (bytes + size > budget || current.length >= MAX_MESSAGES_PER_SEND)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** kafkajs wraps the broker's error in retry errors; the type is on the innermost cause. */
function isTooLarge(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.type === "MESSAGE_TOO_LARGE" || e.type === "RECORD_LIST_TOO_LARGE") return true;
    if (e.cause === e) break;
  }
  return false;
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
