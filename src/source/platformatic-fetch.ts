/**
 * One Fetch request of the @platformatic/kafka source and what it brought,
 * in a form that can cross a thread boundary. The source (platformatic-source.ts)
 * plans fetches and owns the partitions' positions; a `Fetcher` only asks a
 * broker and turns its answer into records. Two fetchers do that: one on the
 * calling thread (`ConsumerFetcher`), one in a worker thread
 * (platformatic-fetch-thread.ts), where the client parses the response and
 * inflates compressed batches, the main cost of a fetch, while the main
 * thread decodes and counts the previous batches.
 *
 * Crossing threads, the records of one answer travel as transferred
 * buffers (`packResponse`): the buffers the client inflated batches into move
 * whole, anything else is copied into one more, and two arrays of numbers say
 * where each key and value lies. The receiving thread wraps views of them
 * (`unpackFetched`): an inflated snapshot is never copied.
 */
import type { ConnectionPool, Consumer } from "@platformatic/kafka";
import { KafkaError, type KafkaErrorCode, type KafkaErrorContext, kafkaConditionOf } from "./kafka-errors.js";
import { FETCH_LIMITS } from "./platformatic-client.js";
import type { SourceRecord } from "./source.js";

export interface FetchAsk {
  partition: number;
  /** The first offset wanted. */
  fetchOffset: bigint;
}

export interface FetchRequest {
  /** The broker that leads every partition asked for. */
  node: number;
  topicId: string;
  partitions: FetchAsk[];
  /** How long the broker may hold the request while it has nothing new. */
  maxWaitTime: number;
}

/** What one partition's answer brought. */
export interface FetchedPartition {
  partition: number;
  /** Offset after the newest record the broker holds; -1n when it did not say. */
  highWatermark: bigint;
  /** Leader epoch of the newest batch; undefined when no batch came. */
  leaderEpoch: number | undefined;
  /** Offset after the last batch that came, transaction markers included; the asked offset when none did. */
  end: bigint;
  /** Records at or after the asked offset, markers left out. */
  records: SourceRecord[];
}

/** Why a fetch failed, with the partitions whose position no longer lies in the log. */
export class FetchFailure extends Error {
  constructor(
    readonly condition: KafkaError,
    readonly outOfRange: ReadonlyMap<number, { logStart: bigint; high: bigint }>,
  ) {
    super(condition.message);
    this.name = "FetchFailure";
  }
}

export interface Fetcher {
  /** Gets ready to fetch (a thread boots meanwhile); fetch() does it when this was not called. */
  open(): void;
  /** Resolves with the partitions the broker answered for; rejects with a FetchFailure. */
  fetch(request: FetchRequest): Promise<FetchedPartition[]>;
  /** Releases the fetch connections (and the thread, if any); fetches in flight fail. */
  close(): Promise<void>;
}

/** The part of @platformatic/kafka's Consumer a fetcher uses. */
export type FetchingConsumer = Pick<Consumer, "fetch">;
type FetchResponse = Awaited<ReturnType<Consumer["fetch"]>>;

/** Record batch attribute bit of a transaction marker, which carries no snapshot. */
const CONTROL_BATCH = 0b10_0000;

/** Fetches with a consumer of the calling thread, on `pool` when given (else on the consumer's connections). */
export class ConsumerFetcher implements Fetcher {
  constructor(
    private readonly consumer: () => FetchingConsumer,
    private readonly options: { topic: string; context: KafkaErrorContext; pool?: ConnectionPool },
  ) {}

  open(): void {}

  async fetch(request: FetchRequest): Promise<FetchedPartition[]> {
    const response = await fetchResponse(this.consumer(), request, this.options);
    return fetchedPartitions(response, request, this.options.topic);
  }

  async close(): Promise<void> {
    await this.options.pool?.close();
  }
}

/** Sends `request`; rejects with a FetchFailure. */
export async function fetchResponse(
  consumer: FetchingConsumer,
  request: FetchRequest,
  options: { context: KafkaErrorContext; pool?: ConnectionPool },
): Promise<FetchResponse> {
  try {
    return await consumer.fetch({
      node: request.node,
      topics: [
        {
          topicId: request.topicId,
          partitions: request.partitions.map(({ partition, fetchOffset }) => ({
            partition,
            fetchOffset,
            partitionMaxBytes: FETCH_LIMITS.maxBytesPerPartition,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
          })),
        },
      ],
      maxBytes: FETCH_LIMITS.maxBytes,
      maxWaitTime: request.maxWaitTime,
      minBytes: 1,
      ...(options.pool ? { connectionPool: options.pool } : {}),
    });
  } catch (err) {
    throw fetchFailureOf(err, options.context);
  }
}

type ResponseRecord = NonNullable<
  FetchResponse["responses"][number]["partitions"][number]["records"]
>[number]["records"][number];

/** A partition's answer without its records. */
interface AnswerSummary {
  partition: number;
  highWatermark: bigint;
  leaderEpoch: number | undefined;
  end: bigint;
  /** How many records were visited for it. */
  count: number;
}

/** Batch attribute bits of the compression codec, and the codecs node:zlib inflates (gzip 1, zstd 4). */
const CODEC_BITS = 0b111;
const ZLIB_CODECS = new Set([1, 4]);

/**
 * Visits the records of `response` at or after the offset asked for (a fetch starts at the batch
 * holding that offset, not at it), transaction markers left out, partition by partition.
 * `inflated` says the record's key and value are views of the buffer node:zlib inflated its batch
 * into, which nothing else holds.
 */
function walkResponse(
  response: FetchResponse,
  request: FetchRequest,
  visit: (partition: number, record: ResponseRecord, offset: bigint, inflated: boolean) => void,
): AnswerSummary[] {
  const asked = new Map(request.partitions.map((p) => [p.partition, p.fetchOffset]));
  const out: AnswerSummary[] = [];
  for (const t of response.responses) {
    for (const answer of t.partitions) {
      const partition = answer.partitionIndex;
      const offset = asked.get(partition);
      if (offset === undefined) continue;
      const summary: AnswerSummary = {
        partition,
        highWatermark: answer.highWatermark,
        leaderEpoch: undefined,
        end: offset,
        count: 0,
      };
      for (const batch of answer.records ?? []) {
        summary.end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
        summary.leaderEpoch = batch.partitionLeaderEpoch;
        if (batch.attributes & CONTROL_BATCH) continue;
        const inflated = ZLIB_CODECS.has(batch.attributes & CODEC_BITS);
        for (const r of batch.records) {
          const at = batch.firstOffset + BigInt(r.offsetDelta);
          if (at < offset) continue;
          visit(partition, r, at, inflated);
          summary.count++;
        }
      }
      out.push(summary);
    }
  }
  return out;
}

/** The records of a Fetch response, per partition asked for. */
export function fetchedPartitions(
  response: FetchResponse,
  request: FetchRequest,
  topic: string,
): FetchedPartition[] {
  const records: SourceRecord[] = [];
  const answers = walkResponse(response, request, (partition, r, at) =>
    records.push({
      topic,
      partition,
      offset: at.toString(),
      key: r.key,
      value: r.value,
      ...(r.headers.length > 0 ? { headers: headersOf(r.headers) } : {}),
    }),
  );
  let from = 0;
  return answers.map(({ count, ...answer }) => {
    const start = from;
    from += count;
    return { ...answer, records: records.slice(start, from) };
  });
}

function headersOf(entries: Array<[Buffer | null, Buffer | null]>): Record<string, Buffer | undefined> {
  const headers: Record<string, Buffer | undefined> = {};
  for (const [k, v] of entries) if (k) headers[k.toString()] = v ?? undefined;
  return headers;
}

export function fetchFailureOf(err: unknown, context: KafkaErrorContext): FetchFailure {
  if (err instanceof FetchFailure) return err;
  return new FetchFailure(kafkaConditionOf(err, context), outOfRangePartitions(err));
}

/** The partitions a failed fetch reports OFFSET_OUT_OF_RANGE for, with the log's bounds. */
function outOfRangePartitions(err: unknown): Map<number, { logStart: bigint; high: bigint }> {
  const out = new Map<number, { logStart: bigint; high: bigint }>();
  const response = (err as { response?: FetchResponse } | undefined)?.response;
  if (!response?.responses) return out;
  for (const t of response.responses) {
    for (const p of t.partitions) {
      // 1: OFFSET_OUT_OF_RANGE in the Kafka protocol.
      if (p.errorCode === 1 && p.logStartOffset >= 0n)
        out.set(p.partitionIndex, { logStart: p.logStartOffset, high: p.highWatermark });
    }
  }
  return out;
}

/** A fetch's outcome as a worker thread posts it: structured-cloneable, its bytes in `buffers`. */
export interface PackedFetch {
  partitions: AnswerSummary[];
  /** Every record's offset, in order. */
  offsets: BigInt64Array;
  /** Per record, for its key then its value: buffer index, start, length; a length of -1 is null. */
  spans: Int32Array;
  /** buffers[0] holds the copied keys and values; the others are inflated batches, moved whole. */
  buffers: ArrayBuffer[];
  /** Headers by record index, for the few records that have any. */
  headers: Array<[number, Array<[string, Uint8Array | null]>]>;
}

export interface PackedFailure {
  code: KafkaErrorCode;
  message: string;
  outOfRange: Map<number, { logStart: bigint; high: bigint }>;
}

/** Starts every copied key and value at a multiple of 8, so views of float arrays inside stay aligned where the record allows it. */
const ALIGN = 8;
const aligned = (n: number) => (n + ALIGN - 1) & ~(ALIGN - 1);
const SPAN = 6;

/**
 * Packs a Fetch response for postMessage; `transfer` lists what moves rather than being copied.
 * The buffer a batch was inflated into moves whole, its keys and values described by spans;
 * anything else (records of uncompressed batches, which are views of the connection's receive
 * buffers; small buffers, which may be slices of Node.js's shared pool) is copied into buffers[0].
 *
 * Example: two records of an uncompressed batch, key "k" (1 byte) and a 12-byte value, then no
 * key and a 3-byte value, copy into 32 bytes: spans [0,0,1, 0,8,12, 0,0,-1, 0,24,3].
 */
export function packResponse(
  response: FetchResponse,
  request: FetchRequest,
): { packed: PackedFetch; transfer: ArrayBuffer[] } {
  const visited: Array<{ record: ResponseRecord; offset: bigint; inflated: boolean }> = [];
  const partitions = walkResponse(response, request, (_, record, offset, inflated) =>
    visited.push({ record, offset, inflated }),
  );
  const movable = (buf: Buffer, inflated: boolean) =>
    inflated && buf.buffer instanceof ArrayBuffer && buf.buffer.byteLength > Buffer.poolSize;
  let copied = 0;
  for (const { record, inflated } of visited)
    for (const buf of [record.key, record.value])
      if (buf && !movable(buf, inflated)) copied += aligned(buf.length);
  const copies = new Uint8Array(copied);
  const buffers: ArrayBuffer[] = [copies.buffer];
  const indexOf = new Map<ArrayBuffer, number>();
  const offsets = new BigInt64Array(visited.length);
  const spans = new Int32Array(visited.length * SPAN);
  const headers: PackedFetch["headers"] = [];
  let at = 0;
  const put = (buf: Buffer | null, inflated: boolean, slot: number) => {
    if (buf === null) {
      spans[slot + 2] = -1;
    } else if (movable(buf, inflated)) {
      const whole = buf.buffer as ArrayBuffer;
      let index = indexOf.get(whole);
      if (index === undefined) {
        index = buffers.push(whole) - 1;
        indexOf.set(whole, index);
      }
      spans[slot] = index;
      spans[slot + 1] = buf.byteOffset;
      spans[slot + 2] = buf.length;
    } else {
      copies.set(buf, at);
      spans[slot + 1] = at;
      spans[slot + 2] = buf.length;
      at += aligned(buf.length);
    }
  };
  visited.forEach(({ record, offset, inflated }, i) => {
    offsets[i] = offset;
    put(record.key, inflated, i * SPAN);
    put(record.value, inflated, i * SPAN + 3);
    if (record.headers.length > 0)
      headers.push([
        i,
        record.headers.flatMap(
          ([k, v]): Array<[string, Uint8Array | null]> =>
            k ? [[k.toString(), v === null ? null : new Uint8Array(v)]] : [],
        ),
      ]);
  });
  return {
    packed: { partitions, offsets, spans, buffers, headers },
    transfer: [...buffers, offsets.buffer, spans.buffer],
  };
}

/** The inverse of packResponse: records whose keys and values are views of the packed buffers. */
export function unpackFetched(packed: PackedFetch, topic: string): FetchedPartition[] {
  const { offsets, spans, buffers } = packed;
  const view = (slot: number): Buffer | null =>
    spans[slot + 2]! < 0 ? null : Buffer.from(buffers[spans[slot]!]!, spans[slot + 1]!, spans[slot + 2]!);
  const headers = new Map(packed.headers);
  let i = 0;
  return packed.partitions.map(({ partition, highWatermark, leaderEpoch, end, count }) => {
    const records: SourceRecord[] = new Array(count);
    for (let n = 0; n < count; n++, i++) {
      const h = headers.get(i);
      records[n] = {
        topic,
        partition,
        offset: offsets[i]!.toString(),
        key: view(i * SPAN),
        value: view(i * SPAN + 3),
        ...(h
          ? {
              headers: Object.fromEntries(
                h.map(([k, v]) => [
                  k,
                  v === null ? undefined : Buffer.from(v.buffer, v.byteOffset, v.length),
                ]),
              ),
            }
          : {}),
      };
    }
    return { partition, highWatermark, leaderEpoch, end, records };
  });
}

export function packFailure(failure: FetchFailure): PackedFailure {
  return {
    code: failure.condition.code,
    message: failure.condition.message,
    outOfRange: new Map(failure.outOfRange),
  };
}

export function unpackFailure(packed: PackedFailure): FetchFailure {
  return new FetchFailure(new KafkaError(packed.code, packed.message), packed.outOfRange);
}
