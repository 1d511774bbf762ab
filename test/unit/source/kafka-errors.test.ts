/**
 * The errors kafkajs raises for expected broker conditions, built with
 * kafkajs's own error classes in the shapes it throws them (wrapped in
 * "retries exceeded", a protocol error type, a socket code), must come out as
 * the documented code with a one-line message naming what to fix; anything
 * that is not from Kafka must be left alone.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import kafkajs from "kafkajs";
import { CommandError, fatalLine } from "../../../src/cli/fatal.js";
import { CodecError } from "../../../src/codec/index.js";
import { packageRoot } from "../../../src/paths.js";
import { KAFKA_ERROR_CODES, KafkaError, kafkaErrorOf } from "../../../src/source/kafka-errors.js";

const {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
} = kafkajs;

const ctx = { brokers: ["kafka-1:9092", "kafka-2:9092"], topic: "reluwatch.snapshots", group: "reluwatch" };

/** kafkajs builds protocol errors from an entry of its error-code table; its typings only admit an Error. */
function protocol(type: string, code: number): Error {
  const entry = { type, code, retriable: false, message: `server says ${type}` };
  return new KafkaJSProtocolError(entry as unknown as Error);
}

function retried(cause: Error): Error {
  return new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 10, retryTime: 10_000 });
}

describe("kafkaErrorOf", () => {
  test("a refused connection, even wrapped in retries exceeded, is BROKER_UNREACHABLE naming the brokers", () => {
    const err = retried(
      new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 10.0.0.1:9092", {
        broker: "kafka-1:9092",
        code: "ECONNREFUSED",
      }),
    );
    const k = kafkaErrorOf(err, ctx)!;
    assert.equal(k.code, "BROKER_UNREACHABLE");
    assert.equal(k.waitable, true);
    assert.match(
      k.message,
      /^cannot reach Kafka at kafka-1:9092,kafka-2:9092 \(ECONNREFUSED\); check --brokers/,
    );
  });

  test("a name that does not resolve is BROKER_UNREACHABLE too", () => {
    const err = new KafkaJSConnectionError("getaddrinfo ENOTFOUND kafka", {
      broker: "kafka:9092",
      code: "ENOTFOUND",
    });
    assert.equal(kafkaErrorOf(err, ctx)?.code, "BROKER_UNREACHABLE");
  });

  test("without brokers in context the message names the broker kafkajs reported", () => {
    const err = new KafkaJSConnectionError("Connection timeout", { broker: "kafka-9:9092" });
    const k = kafkaErrorOf(err, { brokers: [] })!;
    assert.equal(k.code, "BROKER_UNREACHABLE");
    assert.match(k.message, /kafka-9:9092/);
  });

  test("UNKNOWN_TOPIC_OR_PARTITION is TOPIC_NOT_FOUND naming the topic; waiting can end it", () => {
    const k = kafkaErrorOf(protocol("UNKNOWN_TOPIC_OR_PARTITION", 3), ctx)!;
    assert.equal(k.code, "TOPIC_NOT_FOUND");
    assert.equal(k.waitable, true);
    assert.match(
      k.message,
      /^topic reluwatch\.snapshots does not exist on kafka-1:9092,kafka-2:9092; create it/,
    );
  });

  test("without a topic in context, a topic error lists every topic flag", () => {
    const k = kafkaErrorOf(protocol("UNKNOWN_TOPIC_OR_PARTITION", 3), { brokers: ["k:9092"] })!;
    assert.match(k.message, /^a topic does not exist .*--topic, --events-topic and --dead-letter-topic$/);
  });

  test("conditions waiting does not fix are not waitable", () => {
    const cases: Array<[Error, string]> = [
      [
        new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(
          "SASL PLAIN authentication failed",
        ),
        "KAFKA_AUTH_FAILED",
      ],
      [protocol("SASL_AUTHENTICATION_FAILED", 58), "KAFKA_AUTH_FAILED"],
      [retried(protocol("TOPIC_AUTHORIZATION_FAILED", 29)), "KAFKA_NOT_AUTHORIZED"],
      [protocol("GROUP_AUTHORIZATION_FAILED", 30), "KAFKA_NOT_AUTHORIZED"],
      [protocol("INVALID_TOPIC_EXCEPTION", 17), "TOPIC_INVALID"],
      [
        new KafkaJSConnectionError("self-signed certificate", {
          broker: "k:9093",
          code: "DEPTH_ZERO_SELF_SIGNED_CERT",
        }),
        "KAFKA_TLS_FAILED",
      ],
      [protocol("MESSAGE_TOO_LARGE", 10), "KAFKA_ERROR"],
    ];
    for (const [err, code] of cases) {
      const k = kafkaErrorOf(err, ctx);
      assert.equal(k?.code, code, err.message);
      assert.equal(k.waitable, false, code);
    }
  });

  test("the group is named when the group is refused", () => {
    assert.match(
      kafkaErrorOf(protocol("GROUP_AUTHORIZATION_FAILED", 30), ctx)!.message,
      /consumer group reluwatch/,
    );
  });

  test("errors that did not come from Kafka are left alone", () => {
    assert.equal(kafkaErrorOf(new TypeError("x is undefined"), ctx), undefined);
    assert.equal(kafkaErrorOf("a string", ctx), undefined);
    assert.equal(kafkaErrorOf(undefined, ctx), undefined);
  });

  test("every message is one line, even when kafkajs's is not", () => {
    const err = new KafkaJSConnectionError("line one\n  line two", { broker: "k:9092" });
    const k = kafkaErrorOf(err, ctx)!;
    assert.doesNotMatch(k.message, /\n/);
    const other = kafkaErrorOf(protocol("NOT_COORDINATOR\nX", 16), ctx)!;
    assert.doesNotMatch(other.message, /\n/);
  });
});

describe("fatalLine", () => {
  test("a Kafka condition: the command, the code and the message, exit 1", () => {
    const err = new KafkaJSConnectionError("connect ECONNREFUSED", {
      broker: "k:9092",
      code: "ECONNREFUSED",
    });
    assert.deepEqual(fatalLine("record", err, { brokers: ["k:9092"] }), {
      line: "reluwatch: record: BROKER_UNREACHABLE: cannot reach Kafka at k:9092 (ECONNREFUSED); check --brokers and that the broker is running",
      exitCode: 1,
    });
  });

  test("a usage error keeps its exit code; a codec error leads with its code", () => {
    assert.deepEqual(fatalLine("simulate", new CommandError("--brokers needs --topic", 2)), {
      line: "reluwatch: simulate: --brokers needs --topic",
      exitCode: 2,
    });
    const codec = new CodecError("BAD_MAGIC", "not a reluwatch message");
    assert.equal(fatalLine("record", codec)?.line, "reluwatch: record: BAD_MAGIC: not a reluwatch message");
  });

  test("a bug is not dressed up as an expected failure", () => {
    assert.equal(fatalLine("consume", new RangeError("index out of range")), undefined);
  });
});

describe("docs/errors.md", () => {
  test("documents every Kafka condition code, and no other", () => {
    const doc = readFileSync(join(packageRoot, "docs/errors.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Kafka conditions"));
    assert.ok(section.length < doc.length, "docs/errors.md has a Kafka conditions section");
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \| (yes|no) \|/gm)];
    assert.deepEqual(documented.map((m) => m[1]).sort(), [...KAFKA_ERROR_CODES].sort());
    for (const [, code, waits] of documented) {
      const waitable = new KafkaError(code as (typeof KAFKA_ERROR_CODES)[number], "").waitable;
      assert.equal(waits === "yes", waitable, `${code}: the "waited for" column`);
    }
  });
});
