/**
 * What a fetch brought, on the calling thread (fetchedPartitions) and packed
 * for the fetch thread's postMessage (packResponse, unpackFetched): both give
 * the same records; inflated batches move by reference, anything else is
 * copied, 8-byte aligned. The thread itself runs against a real broker in
 * test/integration/platformatic-fetch-thread.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type FetchRequest,
  fetchedPartitions,
  packResponse,
  unpackFetched,
} from "../../../src/source/platformatic-fetch.js";

const TOPIC = "t";
const GZIP = 1;
const CONTROL = 0b10_0000;

type Response = Parameters<typeof fetchedPartitions>[0];

interface Rec {
  offset: number;
  key?: Buffer | null;
  value: Buffer | null;
  headers?: Array<[Buffer | null, Buffer | null]>;
}

function batch(records: Rec[], attributes = 0) {
  const first = records[0]!.offset;
  return {
    firstOffset: BigInt(first),
    lastOffsetDelta: records.at(-1)!.offset - first,
    partitionLeaderEpoch: 3,
    attributes,
    records: records.map((r) => ({
      offsetDelta: r.offset - first,
      key: r.key ?? null,
      value: r.value,
      headers: r.headers ?? [],
    })),
  };
}

function response(partitions: Array<{ partition: number; batches: unknown[]; highWatermark?: bigint }>) {
  return {
    responses: [
      {
        topicId: "id",
        partitions: partitions.map((p) => ({
          partitionIndex: p.partition,
          errorCode: 0,
          highWatermark: p.highWatermark ?? 100n,
          lastStableOffset: 100n,
          logStartOffset: 0n,
          records: p.batches,
        })),
      },
    ],
  } as unknown as Response;
}

function request(asked: Record<number, bigint>): FetchRequest {
  return {
    node: 1,
    topicId: "id",
    maxWaitTime: 20,
    partitions: Object.entries(asked).map(([p, o]) => ({ partition: Number(p), fetchOffset: o })),
  };
}

/** Values as views of one buffer larger than Node.js's pool, as node:zlib inflates a batch. */
function inflated(values: string[]): Buffer[] {
  const whole = Buffer.alloc(Buffer.poolSize * 4);
  let at = 44;
  return values.map((v) => {
    const view = whole.subarray(at, at + v.length);
    view.write(v);
    at += v.length;
    return view;
  });
}

const plain = (records: ReturnType<typeof fetchedPartitions>) =>
  records.map((p) => ({
    ...p,
    records: p.records.map((r) => ({
      ...r,
      key: r.key?.toString() ?? null,
      value: r.value?.toString() ?? null,
      headers: r.headers
        ? Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v?.toString()]))
        : undefined,
    })),
  }));

describe("platformatic fetch", () => {
  test("records from the offset asked for, markers stepped over, the end and epoch of the last batch", () => {
    const r = response([
      {
        partition: 0,
        batches: [
          batch([
            { offset: 10, value: Buffer.from("ten") },
            { offset: 11, value: Buffer.from("eleven") },
          ]),
          batch([{ offset: 12, value: null }], CONTROL),
        ],
      },
      { partition: 1, batches: [], highWatermark: 5n },
    ]);
    const got = fetchedPartitions(r, request({ 0: 11n, 1: 5n }), TOPIC);
    assert.deepEqual(plain(got), [
      {
        partition: 0,
        highWatermark: 100n,
        leaderEpoch: 3,
        end: 13n,
        records: [
          { topic: TOPIC, partition: 0, offset: "11", key: null, value: "eleven", headers: undefined },
        ],
      },
      { partition: 1, highWatermark: 5n, leaderEpoch: undefined, end: 5n, records: [] },
    ]);
  });

  test("packed and unpacked, a response gives the records the calling thread reads from it", () => {
    const [a, b, c] = inflated(["alpha", "beta", "gamma"]);
    const r = response([
      {
        partition: 2,
        batches: [
          batch(
            [
              { offset: 4, key: Buffer.from("k4"), value: a! },
              { offset: 5, value: b!, headers: [[Buffer.from("trace"), Buffer.from("x1")]] },
            ],
            GZIP,
          ),
          batch([{ offset: 6, key: Buffer.from("k6"), value: Buffer.from("plain") }]),
        ],
      },
      { partition: 3, batches: [batch([{ offset: 0, value: c! }], GZIP)] },
    ]);
    const ask = request({ 2: 5n, 3: 0n });
    const { packed, transfer } = packResponse(r, ask);
    assert.deepEqual(plain(unpackFetched(packed, TOPIC)), plain(fetchedPartitions(r, ask, TOPIC)));
    assert.equal(packed.buffers.length, 2, "the copies, then the one inflated buffer, once");
    assert.equal(packed.buffers[1], a!.buffer, "the inflated batch moves, it is not copied");
    for (const buffer of packed.buffers) assert.ok(transfer.includes(buffer));
    // The first record (offset 5) has no key; its value lies in the inflated buffer where it was.
    assert.deepEqual([...packed.spans.subarray(3, 6)], [1, b!.byteOffset, 4]);
  });

  test("copies start at multiples of 8: the worked example of packResponse", () => {
    const r = response([
      {
        partition: 0,
        batches: [
          batch([
            { offset: 0, key: Buffer.from("k"), value: Buffer.alloc(12, 1) },
            { offset: 1, value: Buffer.from("abc") },
          ]),
        ],
      },
    ]);
    const { packed } = packResponse(r, request({ 0: 0n }));
    assert.equal(packed.buffers.length, 1);
    assert.equal(packed.buffers[0]!.byteLength, 32);
    assert.deepEqual([...packed.spans], [0, 0, 1, 0, 8, 12, 0, 0, -1, 0, 24, 3]);
    const [p] = unpackFetched(packed, TOPIC);
    assert.equal(p!.records[1]!.key, null);
    assert.equal(p!.records[1]!.value!.toString(), "abc");
  });

  test("small inflated buffers (maybe slices of Node.js's shared pool) are copied, never moved", () => {
    const small = Buffer.from("pooled?");
    assert.ok(small.buffer.byteLength <= Buffer.poolSize);
    const r = response([{ partition: 0, batches: [batch([{ offset: 0, value: small }], GZIP)] }]);
    const { packed, transfer } = packResponse(r, request({ 0: 0n }));
    assert.equal(packed.buffers.length, 1);
    assert.ok(!transfer.includes(small.buffer as ArrayBuffer));
    assert.equal(unpackFetched(packed, TOPIC)[0]!.records[0]!.value!.toString(), "pooled?");
  });
});
