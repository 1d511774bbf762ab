/**
 * ActivationSnapshot ⇄ single-object-encoded Avro. Encoding validates first,
 * so a publisher never puts a message on the wire that a consumer would
 * reject; decoding resolves the writer by fingerprint, then validates.
 */
import type avro from "avsc";
import type { ActivationDtype, ActivationSnapshot } from "../core/snapshot.js";
import { fingerprintBytes } from "./crc64.js";
import { CodecError } from "./errors.js";
import { resolveLimits, type SnapshotLimits } from "./limits.js";
import { type AvroSchema, canonicalForm, previousSnapshotSchemas, snapshotSchema } from "./schemas.js";
import { HEADER_BYTES, MAGIC, SingleObjectType } from "./single-object.js";
import { DIRECT_READER_CANONICAL_FORM, DirectSnapshotReader } from "./snapshot-reader.js";
import { CopyArena, float32FromLE, toLEBytes, uint32FromLE } from "./typed-bytes.js";
import { validateResolved, validateSnapshot } from "./validate.js";

const COUNTS = "reluwatch.v1.FiringCounts";
const RAW = "reluwatch.v1.RawActivations";

interface AvroCounts {
  fires: Buffer;
  abs_sum: Buffer | null;
  sq_sum: Buffer | null;
  nonfinite: Buffer | null;
}
interface AvroRaw {
  dtype: ActivationDtype;
  values: Buffer;
}
interface AvroSnapshot extends Omit<ActivationSnapshot, "stats" | "micro_batch" | "incarnation"> {
  stats: { [COUNTS]?: AvroCounts; [RAW]?: AvroRaw };
  micro_batch: number;
  incarnation: number;
}

export interface DecodeOptions {
  /** The snapshot is dropped before the next decode: see SnapshotCodec.decode. */
  transient?: boolean;
}

/** The Avro record avsc writes for a (validated) snapshot. */
export function snapshotToAvro(s: ActivationSnapshot): AvroSnapshot {
  const { stats, micro_batch, incarnation, ...head } = s;
  return {
    ...head,
    micro_batch: micro_batch ?? 0,
    incarnation: incarnation ?? 0,
    stats:
      stats.kind === "counts"
        ? {
            [COUNTS]: {
              fires: toLEBytes(stats.fires),
              abs_sum: stats.abs_sum ? toLEBytes(stats.abs_sum) : null,
              sq_sum: stats.sq_sum ? toLEBytes(stats.sq_sum) : null,
              nonfinite: stats.nonfinite ? toLEBytes(stats.nonfinite) : null,
            },
          }
        : {
            [RAW]: {
              dtype: stats.dtype,
              values: Buffer.from(stats.values.buffer, stats.values.byteOffset, stats.values.byteLength),
            },
          },
  };
}

/** The decoded form of an Avro record, before semantic validation (which it leaves to the caller). */
export function snapshotFromAvro(rec: AvroSnapshot): ActivationSnapshot {
  const head = {
    run_id: rec.run_id,
    layer: rec.layer,
    rank: rec.rank,
    step: rec.step,
    time: rec.time,
    unit_offset: rec.unit_offset,
    unit_count: rec.unit_count,
    layer_units: rec.layer_units,
    samples: rec.samples,
    micro_batch: rec.micro_batch,
    incarnation: rec.incarnation,
  };
  const counts = rec.stats[COUNTS];
  if (counts) {
    return {
      ...head,
      stats: {
        kind: "counts",
        fires: uint32FromLE(counts.fires),
        abs_sum: counts.abs_sum ? float32FromLE(counts.abs_sum) : null,
        sq_sum: counts.sq_sum ? float32FromLE(counts.sq_sum) : null,
        nonfinite: counts.nonfinite ? uint32FromLE(counts.nonfinite) : null,
      },
    };
  }
  const raw = rec.stats[RAW];
  if (raw) return { ...head, stats: { kind: "raw", dtype: raw.dtype, values: raw.values } };
  throw new CodecError("MALFORMED", "stats is neither FiringCounts nor RawActivations", "stats");
}

/**
 * A snapshot reader/writer with its own set of known writer schemas. The
 * module-level functions use one shared instance. A codec built on the
 * current schema also knows every earlier shipped version
 * (schemas/previous/), so publishers not yet upgraded keep being read.
 */
export class SnapshotCodec {
  readonly objectType: SingleObjectType;

  /** Single-object headers of the container writer schemas seen, by schema JSON. */
  private readonly bodyHeaders = new Map<string, Buffer>();
  /** Reads messages of the reader's own schema without avsc; undefined for any other reader schema. */
  private readonly direct: DirectSnapshotReader | undefined;
  /** Where a transient decode copies misaligned arrays. */
  private readonly arena = new CopyArena();
  /** The limits last asked for and their resolution: a consumer passes the same object every time. */
  private lastLimits: { asked: Partial<SnapshotLimits> | undefined; resolved: SnapshotLimits } = {
    asked: undefined,
    resolved: resolveLimits(),
  };

  constructor(readerSchema: AvroSchema = snapshotSchema) {
    this.objectType = new SingleObjectType(readerSchema);
    this.direct =
      canonicalForm(this.objectType.type) === DIRECT_READER_CANONICAL_FORM
        ? new DirectSnapshotReader()
        : undefined;
    if (readerSchema === snapshotSchema) {
      for (const previous of previousSnapshotSchemas) this.objectType.addWriterSchema(previous);
    }
  }

  get type(): avro.Type {
    return this.objectType.type;
  }

  get fingerprint(): bigint {
    return this.objectType.fingerprint;
  }

  addWriterSchema(schema: AvroSchema | avro.Type): bigint {
    return this.objectType.addWriterSchema(schema);
  }

  encode(s: ActivationSnapshot): Buffer {
    validateSnapshot(s);
    return this.objectType.encode(snapshotToAvro(s));
  }

  /** Whether messages of the reader's own schema skip avsc (see snapshot-reader.ts). */
  get readsDirectly(): boolean {
    return this.direct !== undefined;
  }

  /**
   * The snapshot in a single-object message. Its arrays may be views of `buf`
   * (the aliasing rule in snapshot-reader.ts): do not change `buf` while the
   * snapshot is in use. `transient`: the caller is done with the snapshot
   * before it decodes the next one with this codec (the processor applies it
   * at once), so misaligned arrays are copied into memory reused by every
   * such decode instead of fresh buffers.
   */
  decode(buf: Uint8Array, limits?: Partial<SnapshotLimits>, options?: DecodeOptions): ActivationSnapshot {
    const lim = this.resolve(limits);
    if (buf.byteLength > lim.maxMessageBytes) {
      throw new CodecError(
        "TOO_LARGE",
        `message of ${buf.byteLength} bytes exceeds the maxMessageBytes limit of ${lim.maxMessageBytes}`,
      );
    }
    const direct =
      this.direct !== undefined && this.objectType.hasOwnHeader(buf)
        ? this.direct.read(asBuffer(buf), HEADER_BYTES, options?.transient ? this.resetArena() : undefined)
        : undefined;
    return validateResolved(direct ?? snapshotFromAvro(this.objectType.decode(buf) as AvroSnapshot), lim);
  }

  private resetArena(): CopyArena {
    this.arena.reset();
    return this.arena;
  }

  private resolve(limits: Partial<SnapshotLimits> | undefined): SnapshotLimits {
    if (limits !== this.lastLimits.asked)
      this.lastLimits = { asked: limits, resolved: resolveLimits(limits) };
    return this.lastLimits.resolved;
  }

  /**
   * Decodes an Avro binary body written with `writerSchema` (JSON, as a
   * container file's header holds it), resolved and validated like a message.
   */
  decodeBody(body: Uint8Array, writerSchema: string, limits?: Partial<SnapshotLimits>): ActivationSnapshot {
    let header = this.bodyHeaders.get(writerSchema);
    if (!header) {
      try {
        const fp = this.addWriterSchema(JSON.parse(writerSchema) as AvroSchema);
        header = Buffer.concat([MAGIC, fingerprintBytes(fp)]);
      } catch (err) {
        throw new CodecError("MALFORMED", `unusable writer schema: ${(err as Error).message}`, undefined, {
          cause: err,
        });
      }
      this.bodyHeaders.set(writerSchema, header);
    }
    return this.decode(Buffer.concat([header, body]), limits);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const defaultSnapshotCodec = new SnapshotCodec();

export function encodeSnapshot(s: ActivationSnapshot): Buffer {
  return defaultSnapshotCodec.encode(s);
}

export function decodeSnapshot(
  buf: Uint8Array,
  limits?: Partial<SnapshotLimits>,
  options?: DecodeOptions,
): ActivationSnapshot {
  return defaultSnapshotCodec.decode(buf, limits, options);
}

export function decodeSnapshotBody(
  body: Uint8Array,
  writerSchema: string,
  limits?: Partial<SnapshotLimits>,
): ActivationSnapshot {
  return defaultSnapshotCodec.decodeBody(body, writerSchema, limits);
}

/** Lets the shared decoder read messages from another version of the schema (older or newer). */
export function registerSnapshotWriterSchema(schema: AvroSchema | avro.Type): bigint {
  return defaultSnapshotCodec.addWriterSchema(schema);
}
