import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import avro from "avsc";
import type { Consumer, Producer } from "kafkajs";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";

// A stand-in record: the smoke test proves the toolchain (broker, client, Avro)
// end to end; the snapshot contract has its own tests.
const greeting = avro.Type.forSchema({
  type: "record",
  name: "Smoke",
  fields: [
    { name: "run_id", type: "string" },
    { name: "step", type: "long" },
    { name: "fires", type: "bytes" },
  ],
});

let broker: TestBroker;
let producer: Producer | undefined;
let consumer: Consumer | undefined;

before(async () => {
  broker = await getBroker();
  console.log(`# broker source: ${broker.source} — ${broker.describe}`);
});

after(async () => {
  await producer?.disconnect();
  await consumer?.disconnect();
});

test("an Avro record produced with kafkajs is consumed back intact from a real broker", async (t) => {
  t.diagnostic(`broker source: ${broker.describe}`);
  const topic = uniqueTopic("smoke");
  await createTopic(broker, topic);

  const kafka = kafkaClient(broker);
  producer = kafka.producer();
  await producer.connect();
  const sent = { run_id: "run-smoke", step: 1234, fires: Buffer.from([1, 0, 0, 0, 7, 0, 0, 0]) };
  await producer.send({ topic, messages: [{ key: "run-smoke/fc1", value: greeting.toBuffer(sent) }] });

  consumer = kafka.consumer({ groupId: `${topic}.group` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received = await new Promise<{ key: string; value: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no record within 60 s")), 60_000);
    void consumer!.run({
      eachMessage: async ({ message }) => {
        clearTimeout(timer);
        resolve({ key: message.key!.toString(), value: greeting.fromBuffer(message.value!) });
      },
    });
  });

  assert.equal(received.key, "run-smoke/fc1");
  assert.equal(received.value.run_id, "run-smoke");
  assert.equal(received.value.step, 1234);
  assert.deepEqual(received.value.fires, sent.fires);
});
