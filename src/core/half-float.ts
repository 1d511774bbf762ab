/**
 * Decoding of 16-bit floats. Both formats have only 65,536 bit patterns, so
 * a table lookup per value beats bit arithmetic; each table is built on
 * first use (256 KiB).
 */

let float16Table: Float32Array | undefined;
let bfloat16Table: Float32Array | undefined;

function decodeFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** IEEE 754 binary16 bit pattern → value. */
export function float16Values(): Float32Array {
  if (float16Table === undefined) {
    float16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) float16Table[h] = decodeFloat16Bits(h);
  }
  return float16Table;
}

/** bfloat16 bit pattern (the upper half of a float32) → value. */
export function bfloat16Values(): Float32Array {
  if (bfloat16Table === undefined) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = h << 16;
    bfloat16Table = new Float32Array(bits.buffer);
  }
  return bfloat16Table;
}

export function decodeFloat16(bits: number): number {
  return float16Values()[bits & 0xffff]!;
}

export function decodeBfloat16(bits: number): number {
  return bfloat16Values()[bits & 0xffff]!;
}
