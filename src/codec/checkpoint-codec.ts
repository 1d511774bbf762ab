/**
 * The changelog format of a layer checkpoint (src/core/checkpoint.ts): one
 * binary payload, cut into chunks that each fit a Kafka record of at most
 * 1 MiB, plus a manifest record that names the chunk count and the payload's
 * SHA-256. Every record carries that hash, so a reader never combines chunks
 * of two checkpoints: it takes the newest manifest and, for each index, the
 * chunk with the manifest's hash.
 *
 * Records of layer "blocks.0.mlp.fc1" of run "run/7" (names are URI-encoded,
 * so a "/" in a name cannot make two layers share a key):
 *
 *     run%2F7/blocks.0.mlp.fc1/0 … /n-1   chunks, written first
 *     run%2F7/blocks.0.mlp.fc1/m          the manifest, written last
 *
 * On a compacted topic each key keeps its newest value: a reader that meets a
 * manifest has already met the chunks it names, since they were written
 * before it to the same partition. A checkpoint with fewer chunks than the one
 * before leaves the extra chunk keys holding old data the manifest does not
 * name; checkpointKeys lists them for tombstones.
 *
 * Record header, every record (little-endian):
 *
 *     0  4  magic "RWCK"
 *     4  2  format version (1)
 *     6  1  kind: 1 manifest, 2 chunk
 *     7  1  0
 *     8  32 SHA-256 of the payload: the checkpoint's identity
 *
 * Manifest body: u32 chunk count, u32 0, u64 payload bytes, u16 + UTF-8 run,
 * u16 + UTF-8 layer, u32 position count, then per position i32 partition and
 * i64 offset. Chunk body: u32 index, u32 chunk count, payload bytes.
 *
 * Payload: u32 length + JSON of everything that is not per-unit (scalars,
 * segments, redelivery keys, shard streams, counters; NaN and ±Infinity as
 * {"$num": "NaN"}), then the per-unit arrays as raw little-endian bytes, each
 * padded to 8 bytes, in this order: fires per bucket slot (u32), window fires
 * (u32), last fire (i32), silent-expired, death fires, death samples (u32),
 * state and flags (u8), abs and sq sums per sum slot (f32) when the layer has
 * sums, non-finite counts of the slots the JSON lists (u32), each slot's
 * DEAD verdict units (u32), then the transition log's two rings (deaths, then
 * the others), each as unit (u32), code (u8), step (f64), rate and bound (f32)
 * of the lengths the JSON gives. Compression is left to the topic (zstd).
 */
import { createHash } from "node:crypto";
import type { LayerCheckpoint, LayerStateImage, RingImage, TransitionLogImage } from "../core/index.js";
import { CheckpointCodecError } from "./checkpoint-errors.js";

/** The format this code writes, and the newest it reads. */
export const CHECKPOINT_FORMAT_VERSION = 1;
/** Payload bytes per chunk by default: with the 48-byte header and the key, a record stays under 1 MiB. */
export const DEFAULT_CHUNK_BYTES = 1_000_000;

const MAGIC = Buffer.from("RWCK", "latin1");
const HEADER = 40;
const KIND_MANIFEST = 1;
const KIND_CHUNK = 2;
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** An input position the checkpoint covers, as the service tracks it; the codec only carries it. */
export interface CheckpointPosition {
  partition: number;
  /** A Kafka offset: a decimal int64 string, as kafkajs gives them. */
  offset: string;
}

export interface CheckpointRecord {
  key: string;
  /** Null is a tombstone and is skipped. */
  value: Uint8Array | null;
}

export interface DecodedCheckpoint {
  checkpoint: LayerCheckpoint;
  positions: CheckpointPosition[];
  /** The format version the checkpoint was written in (before any migration). */
  version: number;
  chunks: number;
  payloadBytes: number;
}

/** Turns the JSON part of a payload of version `from` into that of version `from + 1`. */
export type CheckpointMigration = (meta: Record<string, unknown>) => Record<string, unknown>;

export interface DecodeCheckpointOptions {
  /**
   * Migrations by the version they start from. A checkpoint older than
   * CHECKPOINT_FORMAT_VERSION is read only when every step up to it has one;
   * version 1 is the first, so none are built in.
   */
  migrations?: ReadonlyMap<number, CheckpointMigration>;
}

export interface EncodeCheckpointOptions {
  /** Payload bytes per chunk; default DEFAULT_CHUNK_BYTES. */
  chunkBytes?: number;
}

const enc = encodeURIComponent;

/** The keys of a layer's manifest and of its chunks 0..chunks-1. */
export function checkpointKeys(
  run_id: string,
  layer: string,
  chunks: number,
): { manifest: string; chunks: string[] } {
  const base = `${enc(run_id)}/${enc(layer)}`;
  return { manifest: `${base}/m`, chunks: Array.from({ length: chunks }, (_, i) => `${base}/${i}`) };
}

/**
 * The (run, layer) and part a changelog key names, or null when it is not a
 * checkpoint key: how a reader groups the records of the topic by layer.
 */
export function parseCheckpointKey(
  key: string,
): { run_id: string; layer: string; part: "manifest" | number } | null {
  const m = /^([^/]+)\/([^/]+)\/(m|0|[1-9][0-9]*)$/.exec(key);
  if (m === null) return null;
  try {
    return {
      run_id: decodeURIComponent(m[1]!),
      layer: decodeURIComponent(m[2]!),
      part: m[3] === "m" ? "manifest" : Number(m[3]),
    };
  } catch {
    return null;
  }
}

/**
 * The records of one checkpoint, chunks first and the manifest last: write
 * them in this order to the layer's changelog partition.
 *
 *     encodeCheckpoint(detector.checkpoint(run, layer)!, [{ partition: 3, offset: "18234" }])
 *       → 1M units with sums: 102 chunk records of ≤ 1,000,048 bytes, then the manifest
 */
export function encodeCheckpoint(
  cp: LayerCheckpoint,
  positions: readonly CheckpointPosition[],
  options: EncodeCheckpointOptions = {},
): CheckpointRecord[] {
  return encodeVersioned(cp, positions, options, CHECKPOINT_FORMAT_VERSION, (meta) => meta);
}

/**
 * encodeCheckpoint with the format version and JSON part chosen by the
 * caller: how tests write a checkpoint of another version.
 */
export function encodeVersioned(
  cp: LayerCheckpoint,
  positions: readonly CheckpointPosition[],
  options: EncodeCheckpointOptions,
  version: number,
  editMeta: (meta: Record<string, unknown>) => Record<string, unknown>,
): CheckpointRecord[] {
  for (const p of positions) {
    const offset = /^-?[0-9]+$/.test(p.offset) ? BigInt(p.offset) : null;
    if (!(p.partition === (p.partition | 0) && offset !== null && BigInt.asIntN(64, offset) === offset)) {
      throw new RangeError(
        `a position needs an int32 partition and an int64 offset, got ${JSON.stringify(p)}`,
      );
    }
  }
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1)) {
    throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const parts = payloadParts(cp, editMeta);
  const payloadBytes = parts.reduce((n, p) => n + p.byteLength, 0);
  const hash = createHash("sha256");
  for (const p of parts) hash.update(p);
  const id = hash.digest();
  const count = Math.max(1, Math.ceil(payloadBytes / chunkBytes));
  const keys = checkpointKeys(cp.run_id, cp.layer, count);
  const records: CheckpointRecord[] = [];
  let part = 0;
  let within = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.min(chunkBytes, payloadBytes - i * chunkBytes);
    const value = Buffer.allocUnsafe(HEADER + 8 + size);
    writeHeader(value, version, KIND_CHUNK, id);
    value.writeUInt32LE(i, HEADER);
    value.writeUInt32LE(count, HEADER + 4);
    let at = HEADER + 8;
    while (at < value.length) {
      const p = parts[part]!;
      const n = Math.min(p.byteLength - within, value.length - at);
      value.set(p.subarray(within, within + n), at);
      at += n;
      within += n;
      if (within === p.byteLength) {
        part++;
        within = 0;
      }
    }
    records.push({ key: keys.chunks[i]!, value });
  }
  const run = Buffer.from(cp.run_id, "utf8");
  const layer = Buffer.from(cp.layer, "utf8");
  if (run.length > 0xffff || layer.length > 0xffff)
    throw new RangeError("run_id and layer must fit 65,535 bytes");
  const manifest = Buffer.alloc(HEADER + 16 + 2 + run.length + 2 + layer.length + 4 + 12 * positions.length);
  writeHeader(manifest, version, KIND_MANIFEST, id);
  let at = HEADER;
  at = manifest.writeUInt32LE(count, at);
  at = manifest.writeUInt32LE(0, at);
  at = manifest.writeBigUInt64LE(BigInt(payloadBytes), at);
  at = manifest.writeUInt16LE(run.length, at);
  at += run.copy(manifest, at);
  at = manifest.writeUInt16LE(layer.length, at);
  at += layer.copy(manifest, at);
  at = manifest.writeUInt32LE(positions.length, at);
  for (const p of positions) {
    at = manifest.writeInt32LE(p.partition, at);
    at = manifest.writeBigInt64LE(BigInt(p.offset), at);
  }
  records.push({ key: keys.manifest, value: manifest });
  return records;
}

function writeHeader(buf: Buffer, version: number, kind: number, id: Buffer): void {
  MAGIC.copy(buf, 0);
  buf.writeUInt16LE(version, 4);
  buf.writeUInt8(kind, 6);
  buf.writeUInt8(0, 7);
  id.copy(buf, 8);
}

type PerUnit = Uint32Array | Int32Array | Float32Array | Float64Array | Uint8Array;

/** The JSON part and the array parts of a payload, in order, as byte views (no copy on little-endian hosts). */
function payloadParts(
  cp: LayerCheckpoint,
  editMeta: (meta: Record<string, unknown>) => Record<string, unknown>,
): Uint8Array[] {
  const { state: img, log, ...record } = cp;
  const nonfiniteSlots: number[] = [];
  for (const [slot, a] of img.nonfinite.entries()) if (a !== null) nonfiniteSlots.push(slot);
  const meta = editMeta({
    ...record,
    state: {
      units: img.units,
      windowSteps: img.windowSteps,
      buckets: img.buckets,
      head: img.head,
      newestStep: img.newestStep,
      origin: img.origin,
      newestRel: img.newestRel,
      sumGroupIds: img.sumGroupIds,
      segments: img.segments,
      seen: img.seen,
      sums: img.absSum !== null,
      nonfiniteSlots,
      verdictCounts: img.verdicts.map((v) => v.length),
    },
    log: {
      deaths: { written: log.deaths.written, length: log.deaths.unit.length },
      others: { written: log.others.written, length: log.others.unit.length },
    },
  });
  const json = Buffer.from(
    JSON.stringify(meta, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? { $num: String(v) } : v)),
  );
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length);
  const parts: Uint8Array[] = [head, json];
  let bytes = 4 + json.length;
  const push = (a: PerUnit) => {
    if (bytes % 8 !== 0) {
      parts.push(new Uint8Array(8 - (bytes % 8)));
      bytes += 8 - (bytes % 8);
    }
    parts.push(leBytes(a));
    bytes += a.byteLength;
  };
  for (const a of arrays(img, nonfiniteSlots)) push(a);
  for (const ring of [log.deaths, log.others]) for (const a of ringArrays(ring)) push(a);
  return parts;
}

/** The per-unit arrays of an image in payload order. */
function arrays(img: LayerStateImage, nonfiniteSlots: number[]): PerUnit[] {
  return [
    ...img.fires,
    img.windowFires,
    img.lastFire,
    img.silentExpired,
    img.deathFires,
    img.deathSamples,
    img.state,
    img.flags,
    ...(img.absSum ?? []),
    ...(img.sqSum ?? []),
    ...nonfiniteSlots.map((s) => img.nonfinite[s]!),
    ...img.verdicts,
  ];
}

/** A transition ring's arrays in payload order. */
function ringArrays(r: RingImage): PerUnit[] {
  return [r.unit, r.code, r.step, r.rate, r.bound];
}

function leBytes(a: PerUnit): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (HOST_LE || a.BYTES_PER_ELEMENT === 1) return bytes;
  return swapped(bytes, a.BYTES_PER_ELEMENT);
}

function swapped(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += size)
    for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k]!;
  return out;
}

interface Header {
  version: number;
  kind: number;
  id: string;
  key: string;
  body: Uint8Array;
}

function readHeader(r: CheckpointRecord & { value: Uint8Array }): Header {
  const v = r.value;
  if (v.byteLength < HEADER || !MAGIC.equals(v.subarray(0, 4))) {
    throw new CheckpointCodecError(
      "CHECKPOINT_BAD_MAGIC",
      `record ${r.key} is not a reluwatch checkpoint record (no "RWCK" header)`,
    );
  }
  const view = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return {
    version: view.readUInt16LE(4),
    kind: view.readUInt8(6),
    id: view.subarray(8, HEADER).toString("hex"),
    key: r.key,
    body: view.subarray(HEADER),
  };
}

/**
 * The checkpoint that the newest manifest among `records` names, with the
 * positions stored beside it. `records` are one layer's changelog records in
 * topic order (older values of a key may be among them; tombstones are
 * skipped). Throws CheckpointCodecError:
 *
 * - CHECKPOINT_BAD_MAGIC: a record is not a checkpoint record;
 * - CHECKPOINT_VERSION: the manifest's format is newer than this code reads, or
 *   older with no migration to the current one;
 * - CHECKPOINT_INCOMPLETE: no manifest, or a chunk it names is missing;
 * - CHECKPOINT_CORRUPT: the chunks do not hash to the manifest's hash, or the
 *   payload does not hold together.
 */
export function decodeCheckpoint(
  records: readonly CheckpointRecord[],
  options: DecodeCheckpointOptions = {},
): DecodedCheckpoint {
  const headers: Header[] = [];
  for (const r of records)
    if (r.value !== null) headers.push(readHeader(r as CheckpointRecord & { value: Uint8Array }));
  const manifest = headers.findLast((h) => h.kind === KIND_MANIFEST);
  if (manifest === undefined) {
    throw new CheckpointCodecError(
      "CHECKPOINT_INCOMPLETE",
      `no manifest among ${records.length} records: the checkpoint was never completed`,
    );
  }
  const version = manifest.version;
  const migrations = options.migrations ?? new Map<number, CheckpointMigration>();
  if (version > CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointCodecError(
      "CHECKPOINT_VERSION",
      `${manifest.key} is in checkpoint format ${version}, written by a newer reluwatch; this one reads formats up to ${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  for (let v = version; v < CHECKPOINT_FORMAT_VERSION; v++) {
    if (!migrations.has(v)) {
      throw new CheckpointCodecError(
        "CHECKPOINT_VERSION",
        `${manifest.key} is in checkpoint format ${version}, and there is no migration from format ${v} to ${v + 1}`,
      );
    }
  }
  const m = readManifest(manifest);
  if (m.count > headers.length) {
    throw new CheckpointCodecError(
      "CHECKPOINT_INCOMPLETE",
      `${m.run_id}/${m.layer}: the manifest names ${m.count} chunks, there are ${headers.length - 1} records besides it`,
    );
  }
  const chunks = new Array<Uint8Array | undefined>(m.count);
  for (const h of headers) {
    if (h.kind !== KIND_CHUNK || h.id !== manifest.id || h.body.byteLength < 8) continue;
    const view = Buffer.from(h.body.buffer, h.body.byteOffset, h.body.byteLength);
    const index = view.readUInt32LE(0);
    if (index < m.count && view.readUInt32LE(4) === m.count) chunks[index] = view.subarray(8);
  }
  const missing = [...chunks.keys()].filter((i) => chunks[i] === undefined);
  if (missing.length > 0) {
    throw new CheckpointCodecError(
      "CHECKPOINT_INCOMPLETE",
      `${m.run_id}/${m.layer}: ${missing.length} of the manifest's ${m.count} chunks are missing (first: ${missing[0]})`,
    );
  }
  const total = chunks.reduce((n, c) => n + c!.byteLength, 0);
  if (total !== m.payloadBytes) {
    throw new CheckpointCodecError(
      "CHECKPOINT_CORRUPT",
      `${m.run_id}/${m.layer}: the chunks hold ${total} bytes, the manifest says ${m.payloadBytes}`,
    );
  }
  // A fresh buffer: offset 0, so every 8-aligned array in it can be viewed in place.
  const payload = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    payload.set(c!, at);
    at += c!.byteLength;
  }
  const digest = createHash("sha256").update(payload).digest("hex");
  if (digest !== manifest.id) {
    throw new CheckpointCodecError(
      "CHECKPOINT_CORRUPT",
      `${m.run_id}/${m.layer}: the chunks hash to ${digest.slice(0, 16)}…, the manifest names ${manifest.id.slice(0, 16)}…`,
    );
  }
  let checkpoint: LayerCheckpoint;
  try {
    checkpoint = readPayload(payload, version, migrations);
  } catch (err) {
    if (err instanceof CheckpointCodecError) throw err;
    throw new CheckpointCodecError(
      "CHECKPOINT_CORRUPT",
      `${m.run_id}/${m.layer}: the payload does not decode: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (checkpoint.run_id !== m.run_id || checkpoint.layer !== m.layer) {
    throw new CheckpointCodecError(
      "CHECKPOINT_CORRUPT",
      `the manifest names ${m.run_id}/${m.layer}, the payload ${checkpoint.run_id}/${checkpoint.layer}`,
    );
  }
  return { checkpoint, positions: m.positions, version, chunks: m.count, payloadBytes: total };
}

function readManifest(h: Header): {
  count: number;
  payloadBytes: number;
  run_id: string;
  layer: string;
  positions: CheckpointPosition[];
} {
  const b = Buffer.from(h.body.buffer, h.body.byteOffset, h.body.byteLength);
  try {
    let at = 0;
    const count = b.readUInt32LE(at);
    at += 8;
    const payloadBytes = Number(b.readBigUInt64LE(at));
    at += 8;
    const runLen = b.readUInt16LE(at);
    const run_id = b.toString("utf8", at + 2, at + 2 + runLen);
    at += 2 + runLen;
    const layerLen = b.readUInt16LE(at);
    const layer = b.toString("utf8", at + 2, at + 2 + layerLen);
    at += 2 + layerLen;
    const n = b.readUInt32LE(at);
    at += 4;
    if (at + n * 12 !== b.length || count < 1) throw new RangeError("bad length");
    const positions: CheckpointPosition[] = [];
    for (let i = 0; i < n; i++, at += 12) {
      positions.push({ partition: b.readInt32LE(at), offset: b.readBigInt64LE(at + 4).toString() });
    }
    return { count, payloadBytes, run_id, layer, positions };
  } catch (err) {
    throw new CheckpointCodecError("CHECKPOINT_CORRUPT", `manifest ${h.key} does not decode`, { cause: err });
  }
}

function readPayload(
  payload: Uint8Array,
  version: number,
  migrations: ReadonlyMap<number, CheckpointMigration>,
): LayerCheckpoint {
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const jsonLen = view.readUInt32LE(0);
  if (4 + jsonLen > payload.byteLength) throw new RangeError("the JSON part runs past the payload");
  let meta = JSON.parse(view.toString("utf8", 4, 4 + jsonLen), (_k, v) =>
    v !== null && typeof v === "object" && typeof v.$num === "string" ? Number(v.$num) : v,
  ) as Record<string, unknown>;
  for (let v = version; v < CHECKPOINT_FORMAT_VERSION; v++) meta = migrations.get(v)!(meta);
  const {
    state: s,
    log: logMeta,
    ...record
  } = meta as unknown as Omit<LayerCheckpoint, "state" | "log"> & { state: StateMeta; log: LogMeta };
  let at = 4 + jsonLen;
  const take = <T extends PerUnit>(
    ctor: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number },
    n: number,
  ): T => {
    at = Math.ceil(at / 8) * 8;
    const bytes = n * ctor.BYTES_PER_ELEMENT;
    if (!(Number.isSafeInteger(n) && n >= 0) || at + bytes > payload.byteLength) {
      throw new RangeError(
        `an array of ${n} elements at byte ${at} runs past the payload's ${payload.byteLength}`,
      );
    }
    let slice = payload.subarray(at, at + bytes);
    if (!HOST_LE && ctor.BYTES_PER_ELEMENT > 1) slice = swapped(slice, ctor.BYTES_PER_ELEMENT);
    at += bytes;
    return new ctor(slice.buffer as ArrayBuffer, slice.byteOffset, n);
  };
  const N = s.units;
  const B = s.buckets;
  const sumSlots = s.sumGroupIds.length;
  const fires = Array.from({ length: B }, () => take(Uint32Array, N));
  const windowFires = take(Uint32Array, N);
  const lastFire = take(Int32Array, N);
  const silentExpired = take(Uint32Array, N);
  const deathFires = take(Uint32Array, N);
  const deathSamples = take(Uint32Array, N);
  const state = take(Uint8Array, N);
  const flags = take(Uint8Array, N);
  const absSum = s.sums ? Array.from({ length: sumSlots }, () => take(Float32Array, N)) : null;
  const sqSum = s.sums ? Array.from({ length: sumSlots }, () => take(Float32Array, N)) : null;
  const nonfinite = new Array<Uint32Array | null>(B).fill(null);
  for (const slot of s.nonfiniteSlots) {
    if (!(slot >= 0 && slot < B)) throw new RangeError(`non-finite slot ${slot} of ${B}`);
    nonfinite[slot] = take(Uint32Array, N);
  }
  const verdicts = s.verdictCounts.map((n) => take(Uint32Array, n));
  const ring = ({ written, length: n }: LogMeta["deaths"]): RingImage => ({
    written,
    unit: take(Uint32Array, n),
    code: take(Uint8Array, n),
    step: take(Float64Array, n),
    rate: take(Float32Array, n),
    bound: take(Float32Array, n),
  });
  const log: TransitionLogImage = { deaths: ring(logMeta.deaths), others: ring(logMeta.others) };
  if (at !== payload.byteLength)
    throw new RangeError(`${payload.byteLength - at} bytes after the last array`);
  const image: LayerStateImage = {
    units: N,
    windowSteps: s.windowSteps,
    buckets: B,
    head: s.head,
    newestStep: s.newestStep,
    origin: s.origin,
    newestRel: s.newestRel,
    sumGroupIds: s.sumGroupIds,
    segments: s.segments,
    seen: s.seen,
    verdicts,
    fires,
    windowFires,
    lastFire,
    silentExpired,
    deathFires,
    deathSamples,
    state,
    flags,
    absSum,
    sqSum,
    nonfinite,
  };
  return { ...record, state: image, log };
}

interface LogMeta {
  deaths: { written: number; length: number };
  others: { written: number; length: number };
}

type StateMeta = Pick<
  LayerStateImage,
  | "units"
  | "windowSteps"
  | "buckets"
  | "head"
  | "newestStep"
  | "origin"
  | "newestRel"
  | "sumGroupIds"
  | "segments"
  | "seen"
> & { sums: boolean; nonfiniteSlots: number[]; verdictCounts: number[] };
