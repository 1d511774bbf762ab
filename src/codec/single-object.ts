/**
 * Avro single-object encoding: 0xC3 0x01, the writer schema's CRC-64-AVRO
 * fingerprint (8 bytes, little-endian), then the Avro binary body. A reader
 * keeps one resolver per known writer fingerprint, so older and newer writers
 * decode into the current reader schema without a schema registry.
 */
import type avro from "avsc";
import { fingerprintBytes, fingerprintHex } from "./crc64.js";
import { CodecError } from "./errors.js";
import { type AvroSchema, fingerprintOf, parseType } from "./schemas.js";

export const MAGIC = Buffer.from([0xc3, 0x01]);
export const HEADER_BYTES = 10;

interface KnownWriter {
  type: avro.Type;
  /** Undefined for the reader's own schema: no resolution needed. */
  resolver: avro.Resolver | undefined;
}

export class SingleObjectType {
  readonly type: avro.Type;
  readonly fingerprint: bigint;
  private readonly header: Buffer;
  private readonly writers = new Map<string, KnownWriter>();
  /**
   * Where records are written before the exact-size copy that leaves: the header at its start, then
   * the body. avsc's toBuffer writes into 1 KB, so a snapshot (tens of KB) would be written twice,
   * into a zero-filled buffer, and copied once more behind the header. Grows to the largest record.
   */
  private scratch: Buffer;

  constructor(schema: AvroSchema) {
    this.type = parseType(schema);
    this.fingerprint = fingerprintOf(this.type);
    this.header = Buffer.concat([MAGIC, fingerprintBytes(this.fingerprint)]);
    this.scratch = Buffer.allocUnsafe(64 * 1024);
    this.header.copy(this.scratch);
    this.writers.set(fingerprintHex(this.fingerprint), { type: this.type, resolver: undefined });
  }

  /**
   * Teaches this reader another writer schema (an older or newer version of
   * the record). Throws when the two cannot be resolved, per Avro's rules.
   * Returns the writer's fingerprint.
   */
  addWriterSchema(schema: AvroSchema | avro.Type): bigint {
    const writer = parseType(schema);
    const fp = fingerprintOf(writer);
    const key = fingerprintHex(fp);
    if (!this.writers.has(key)) {
      let resolver: avro.Resolver;
      try {
        resolver = this.type.createResolver(writer);
      } catch (err) {
        throw new Error(
          `writer schema ${key} cannot be resolved to reader ${fingerprintHex(this.fingerprint)}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      this.writers.set(key, { type: writer, resolver });
    }
    return fp;
  }

  /** Whether `bytes` starts with this reader's own header: written with exactly the reader's schema. */
  hasOwnHeader(bytes: Uint8Array): boolean {
    if (bytes.length < HEADER_BYTES) return false;
    const header = this.header;
    for (let i = 0; i < HEADER_BYTES; i++) if (bytes[i] !== header[i]) return false;
    return true;
  }

  knownFingerprints(): string[] {
    return [...this.writers.keys()];
  }

  encode(value: unknown): Buffer {
    let end = this.type.encode(value, this.scratch, HEADER_BYTES);
    if (end < 0) {
      // avsc measured the record while failing to fit it: -end bytes were missing.
      const grown = Buffer.allocUnsafe(Math.max(2 * this.scratch.length, this.scratch.length - end));
      this.header.copy(grown);
      this.scratch = grown;
      end = this.type.encode(value, this.scratch, HEADER_BYTES);
    }
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, 0, 0, end);
    return out;
  }

  /** The Avro record in the reader's schema; throws CodecError on a bad header or body. */
  decode(bytes: Uint8Array): unknown {
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magicSeen = Math.min(buf.length, 2);
    if (!buf.subarray(0, magicSeen).equals(MAGIC.subarray(0, magicSeen))) {
      throw new CodecError(
        "BAD_MAGIC",
        `expected single-object marker c3 01, got ${buf.subarray(0, 2).toString("hex") || "nothing"}`,
      );
    }
    if (buf.length < HEADER_BYTES) {
      throw new CodecError("TRUNCATED", `${buf.length} bytes, shorter than the 10-byte single-object header`);
    }
    const fpHex = buf.subarray(2, HEADER_BYTES).toString("hex");
    const writer = this.writers.get(fpHex);
    if (!writer) {
      throw new CodecError(
        "UNKNOWN_FINGERPRINT",
        `writer schema fingerprint ${fpHex} is not one this reader knows (it knows ${this.knownFingerprints().join(", ")})`,
      );
    }
    let decoded: { value: unknown; offset: number };
    try {
      decoded = this.type.decode(buf, HEADER_BYTES, writer.resolver);
    } catch (err) {
      throw bodyError(err);
    }
    if (decoded.offset < 0) {
      throw new CodecError("TRUNCATED", `the Avro body ends early (${buf.length} bytes in all)`);
    }
    if (decoded.offset !== buf.length) {
      throw new CodecError(
        "MALFORMED",
        `${buf.length - decoded.offset} trailing bytes after the Avro body (a message holds exactly one record)`,
      );
    }
    return decoded.value;
  }
}

/** avsc reports bad bodies with plain Errors; give them a code. */
function bodyError(err: unknown): CodecError {
  const message = err instanceof Error ? err.message : String(err);
  if (/ActivationDtype enum index/.test(message)) {
    return new CodecError("UNKNOWN_DTYPE", message, "stats.dtype", { cause: err });
  }
  return new CodecError("MALFORMED", `undecodable Avro body: ${message}`, undefined, { cause: err });
}
