/**
 * CRC-64-AVRO, the 64-bit Rabin fingerprint the Avro specification defines for
 * single-object encoding. avsc only offers cryptographic hashes, so the table
 * is built here from the specification's empty-input constant.
 */

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = 0xffffffffffffffffn;

const TABLE: bigint[] = (() => {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK);
    table.push(fp);
  }
  return table;
})();

/**
 * The fingerprint of a schema's Parsing Canonical Form (pass the canonical JSON,
 * not the schema as written), as an unsigned 64-bit value. Java's Avro library
 * reports the same 64 bits as a signed long: `BigInt.asIntN(64, fp)`.
 */
export function crc64Avro(data: string | Uint8Array): bigint {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

/** The 8 bytes a single-object header carries: the fingerprint, little-endian. */
export function fingerprintBytes(fp: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(fp);
  return out;
}

/** Lower-case hex of the 8 header bytes, as errors and logs print a fingerprint. */
export function fingerprintHex(fp: bigint): string {
  return fingerprintBytes(fp).toString("hex");
}
