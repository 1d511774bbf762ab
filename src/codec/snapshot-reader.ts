/**
 * A direct reader of the current ActivationSnapshot schema's Avro body, for
 * messages whose writer is the reader's own schema (every up-to-date
 * publisher). avsc copies every `bytes` field into a zero-filled buffer of its
 * own; this reader hands out views of the message instead, so a counts
 * snapshot is decoded without copying its arrays.
 *
 * The aliasing rule: a decoded snapshot's arrays are views of the message's
 * bytes wherever the typed array allows it. fires and nonfinite (Uint32Array)
 * and abs_sum and sq_sum (Float32Array) are views when their bytes start at a
 * multiple of 4 in the underlying ArrayBuffer and the host is little-endian;
 * otherwise they are copied once (typed-bytes.ts): into a fresh buffer, or
 * for a transient decode into an arena the next decode overwrites. Raw values (bytes) are
 * always views. So the message's bytes must not be changed while the snapshot
 * is in use, and whoever keeps a snapshot keeps the whole buffer its message
 * was cut from (a fetch response, for Kafka): the detector copies what it
 * keeps into its own arrays, and nothing downstream holds a decoded snapshot
 * past its record.
 *
 * Anything unusual (a short body, a union or enum index out of range, a
 * negative length, a varint too long to be exact, trailing bytes) returns
 * undefined: the caller then decodes with avsc, whose errors are the ones
 * reported. This reader never decides that a message is bad.
 */
import type { ActivationDtype, ActivationSnapshot } from "../core/snapshot.js";
import { type CopyArena, float32At, uint32At } from "./typed-bytes.js";

/** The Parsing Canonical Form this reader is written for; any other reader schema goes through avsc. */
export const DIRECT_READER_CANONICAL_FORM =
  '{"name":"reluwatch.v1.ActivationSnapshot","type":"record","fields":[{"name":"run_id","type":"string"},{"name":"layer","type":"string"},{"name":"rank","type":"int"},{"name":"step","type":"long"},{"name":"time","type":"long"},{"name":"unit_offset","type":"int"},{"name":"unit_count","type":"int"},{"name":"layer_units","type":"int"},{"name":"samples","type":"int"},{"name":"stats","type":[{"name":"reluwatch.v1.FiringCounts","type":"record","fields":[{"name":"fires","type":"bytes"},{"name":"abs_sum","type":["null","bytes"]},{"name":"sq_sum","type":["null","bytes"]},{"name":"nonfinite","type":["null","bytes"]}]},{"name":"reluwatch.v1.RawActivations","type":"record","fields":[{"name":"dtype","type":{"name":"reluwatch.v1.ActivationDtype","type":"enum","symbols":["FLOAT32","FLOAT16","BFLOAT16"]}},{"name":"values","type":"bytes"}]}]},{"name":"micro_batch","type":"int"},{"name":"incarnation","type":"long"}]}';

const DTYPES: readonly ActivationDtype[] = ["FLOAT32", "FLOAT16", "BFLOAT16"];

/**
 * Where the reader stands in the message. One per reader, reused: decoding is
 * synchronous, so no two decodes share it at once.
 */
class Cursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** Set once something does not read cleanly; every later read is then meaningless. */
  bad = false;

  /**
   * A zigzag varint of at most 7 bytes (49 bits): exact in a double and read
   * the way avsc reads it. A longer one is left to avsc.
   */
  long(): number {
    const buf = this.buf;
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= buf.length) break;
      const b = buf[this.pos++]!;
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
      scale *= 128;
    }
    this.bad = true;
    return 0;
  }

  /** A length-prefixed run of bytes, as a view of the message. */
  bytes(): Buffer {
    const start = this.skipBytes();
    return this.buf.subarray(start, this.pos);
  }

  /** Steps over a length-prefixed run of bytes; returns where it starts (it ends at `pos`). */
  skipBytes(): number {
    const len = this.long();
    const start = this.pos;
    if (len < 0 || start + len > this.buf.length) {
      this.bad = true;
      return start;
    }
    this.pos = start + len;
    return start;
  }

  /** ["null", "bytes"]: -1 for null, else where the bytes start (they end at `pos`). */
  skipOptionalBytes(): number {
    const branch = this.long();
    if (branch === 0) return -1;
    if (branch !== 1) this.bad = true;
    return this.skipBytes();
  }

  string(): string {
    const len = this.long();
    const start = this.pos;
    if (len < 0 || start + len > this.buf.length) {
      this.bad = true;
      return "";
    }
    this.pos = start + len;
    return this.buf.toString("utf8", start, start + len);
  }
}

export class DirectSnapshotReader {
  private readonly at = new Cursor();

  /**
   * The snapshot in `buf` from byte `start` to its end, before semantic
   * validation; undefined when the body is not plainly well formed (see above).
   */
  read(buf: Buffer, start: number, arena?: CopyArena): ActivationSnapshot | undefined {
    const c = this.at;
    c.buf = buf;
    c.pos = start;
    c.bad = false;
    try {
      return this.readSnapshot(c, arena);
    } finally {
      c.buf = EMPTY;
    }
  }

  private readSnapshot(c: Cursor, arena: CopyArena | undefined): ActivationSnapshot | undefined {
    const run_id = c.string();
    const layer = c.string();
    const rank = c.long();
    const step = c.long();
    const time = c.long();
    const unit_offset = c.long();
    const unit_count = c.long();
    const layer_units = c.long();
    const samples = c.long();
    const branch = c.long();
    let stats: ActivationSnapshot["stats"];
    if (branch === 0) {
      // Positions first, arrays after: nothing is made of a message that turns out malformed.
      const fires = c.skipBytes();
      const firesEnd = c.pos;
      const absSum = c.skipOptionalBytes();
      const absSumEnd = c.pos;
      const sqSum = c.skipOptionalBytes();
      const sqSumEnd = c.pos;
      const nonfinite = c.skipOptionalBytes();
      const nonfiniteEnd = c.pos;
      if (c.bad) return undefined;
      const buf = c.buf;
      stats = {
        kind: "counts",
        fires: uint32At(buf, fires, firesEnd - fires, arena),
        abs_sum: absSum < 0 ? null : float32At(buf, absSum, absSumEnd - absSum, arena),
        sq_sum: sqSum < 0 ? null : float32At(buf, sqSum, sqSumEnd - sqSum, arena),
        nonfinite: nonfinite < 0 ? null : uint32At(buf, nonfinite, nonfiniteEnd - nonfinite, arena),
      };
    } else if (branch === 1) {
      const dtype = DTYPES[c.long()];
      const values = c.bytes();
      if (dtype === undefined || c.bad) return undefined;
      stats = { kind: "raw", dtype, values };
    } else {
      return undefined;
    }
    const micro_batch = c.long();
    const incarnation = c.long();
    if (c.bad || c.pos !== c.buf.length) return undefined;
    return {
      run_id,
      layer,
      rank,
      step,
      time,
      unit_offset,
      unit_count,
      layer_units,
      samples,
      micro_batch,
      incarnation,
      stats,
    };
  }
}

const EMPTY = Buffer.alloc(0);
