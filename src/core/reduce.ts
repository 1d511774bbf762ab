/**
 * Reduction of raw activations to the per-unit statistics a FiringCounts
 * snapshot carries: fires (> 0), Σ|h| and Σh². Non-finite values (NaN, ±Inf)
 * never fire and are left out of the sums; they are counted instead.
 */
import { bfloat16Values, float16Values } from "./half-float.js";
import { simdKernel } from "./simd-kernel.js";
import type { ActivationDtype } from "./snapshot.js";

export class SnapshotShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SnapshotShapeError";
  }
}

/** Per-unit sums over a snapshot's samples; the arrays are reused between calls. */
export interface UnitSums {
  fires: Uint32Array;
  abs: Float64Array;
  sq: Float64Array;
  /** Non-finite values per unit, when the caller wants them (zeroed by the caller, like the rest). */
  nonfinite?: Uint32Array;
}

export function bytesPerValue(dtype: ActivationDtype): number {
  return dtype === "FLOAT32" ? 4 : 2;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * A fresh buffer holding the first `length` bytes. `bytes.slice` will not do: on a Node
 * Buffer it is a view of the same (pooled, possibly odd-sized) memory, not a copy.
 */
function alignedCopy(bytes: Uint8Array, length: number): ArrayBuffer {
  const copy = new Uint8Array(length);
  copy.set(bytes.subarray(0, length));
  return copy.buffer;
}

/** A typed view of the bytes when alignment and byte order allow one, otherwise a copy. */
function view32(bytes: Uint8Array, n: number): Float32Array {
  if (LITTLE_ENDIAN_HOST) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(alignedCopy(bytes, n * 4));
  }
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 4);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

function view16(bytes: Uint8Array, n: number): Uint16Array {
  if (LITTLE_ENDIAN_HOST) {
    if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    return new Uint16Array(alignedCopy(bytes, n * 2));
  }
  const out = new Uint16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true);
  return out;
}

/**
 * Fills `out`, which the caller has zeroed, with the per-unit sums of the
 * samples × unitCount row-major activations; returns how many values were
 * non-finite (and counts them per unit in `out.nonfinite` when given). Uses the WebAssembly SIMD kernel where the runtime has one.
 */
export function reduceRaw(
  dtype: ActivationDtype,
  bytes: Uint8Array,
  samples: number,
  unitCount: number,
  out: UnitSums,
): number {
  const n = checkLength(dtype, bytes, samples, unitCount);
  const kernel = simdKernel();
  const input = kernel?.input(n, unitCount) ?? null;
  if (kernel === null || input === null) return reducePortable(dtype, bytes, samples, unitCount, out);
  if (dtype === "FLOAT32") input.set(view32(bytes, n));
  else decode16Into(view16(bytes, n), dtype, input);
  const finite = kernel.run(samples, unitCount, out.fires, out.abs, out.sq);
  // The kernel takes units in fours; the last unitCount % 4 columns are summed here.
  if (finite && columnPass(input, samples, unitCount, unitCount & ~3, out)) return 0;
  out.fires.fill(0);
  out.abs.fill(0);
  out.sq.fill(0);
  out.nonfinite?.fill(0);
  return carefulPass(input, samples, unitCount, out);
}

/** reduceRaw in plain JavaScript, for runtimes without WebAssembly SIMD (and to test the kernel against). */
export function reducePortable(
  dtype: ActivationDtype,
  bytes: Uint8Array,
  samples: number,
  unitCount: number,
  out: UnitSums,
): number {
  const n = checkLength(dtype, bytes, samples, unitCount);
  const x = dtype === "FLOAT32" ? view32(bytes, n) : decode16(view16(bytes, n), dtype);
  // The fast pass assumes every value is finite and notices (through a NaN
  // checksum) when one is not; the careful pass then redoes the snapshot.
  if (fastPass(x, samples, unitCount, out)) return 0;
  out.fires.fill(0);
  out.abs.fill(0);
  out.sq.fill(0);
  out.nonfinite?.fill(0);
  return carefulPass(x, samples, unitCount, out);
}

function checkLength(dtype: ActivationDtype, bytes: Uint8Array, samples: number, unitCount: number): number {
  const n = samples * unitCount;
  const need = n * bytesPerValue(dtype);
  if (bytes.byteLength !== need) {
    throw new SnapshotShapeError(
      `raw activations: expected ${need} bytes (${samples} samples × ${unitCount} units × ${dtype}), got ${bytes.byteLength}`,
    );
  }
  return n;
}

function decode16Into(bits: Uint16Array, dtype: ActivationDtype, out: Float32Array): void {
  const table = dtype === "FLOAT16" ? float16Values() : bfloat16Values();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
}

function decode16(bits: Uint16Array, dtype: ActivationDtype): Float32Array {
  const out = new Float32Array(bits.length);
  decode16Into(bits, dtype, out);
  return out;
}

/** Sums units [from, unitCount) row by row; false when a non-finite value was met. */
function columnPass(
  x: Float32Array,
  samples: number,
  unitCount: number,
  from: number,
  out: UnitSums,
): boolean {
  const { fires, abs, sq } = out;
  let check = 0;
  for (let j = from; j < unitCount; j++) {
    let f = 0;
    let a = 0;
    let q = 0;
    for (let i = j; i < samples * unitCount; i += unitCount) {
      const v = x[i]!;
      check += v - v;
      f += v > 0 ? 1 : 0;
      a += Math.abs(v);
      q += v * v;
    }
    fires[j] = f;
    abs[j] = a;
    sq[j] = q;
  }
  return check === 0;
}

/**
 * Four rows at a time, so each per-unit accumulator is read and written once
 * per four values. Returns false when a non-finite value was met.
 */
function fastPass(x: Float32Array, samples: number, unitCount: number, out: UnitSums): boolean {
  const { fires, abs, sq } = out;
  let check = 0;
  let s = 0;
  for (; s + 4 <= samples; s += 4) {
    const b0 = s * unitCount;
    const b1 = b0 + unitCount;
    const b2 = b1 + unitCount;
    const b3 = b2 + unitCount;
    for (let j = 0; j < unitCount; j++) {
      const v0 = x[b0 + j]!;
      const v1 = x[b1 + j]!;
      const v2 = x[b2 + j]!;
      const v3 = x[b3 + j]!;
      const a = Math.abs(v0) + Math.abs(v1) + Math.abs(v2) + Math.abs(v3);
      const q = v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3;
      // a − a is NaN exactly when some |v| was NaN or Inf.
      check += a - a;
      fires[j] = fires[j]! + (v0 > 0 ? 1 : 0) + (v1 > 0 ? 1 : 0) + (v2 > 0 ? 1 : 0) + (v3 > 0 ? 1 : 0);
      abs[j] = abs[j]! + a;
      sq[j] = sq[j]! + q;
    }
  }
  for (; s < samples; s++) {
    const b0 = s * unitCount;
    for (let j = 0; j < unitCount; j++) {
      const v = x[b0 + j]!;
      check += v - v;
      fires[j] = fires[j]! + (v > 0 ? 1 : 0);
      abs[j] = abs[j]! + Math.abs(v);
      sq[j] = sq[j]! + v * v;
    }
  }
  return check === 0;
}

function carefulPass(x: Float32Array, samples: number, unitCount: number, out: UnitSums): number {
  const { fires, abs, sq } = out;
  const perUnit = out.nonfinite ?? null;
  let nonfinite = 0;
  for (let s = 0, base = 0; s < samples; s++, base += unitCount) {
    for (let j = 0; j < unitCount; j++) {
      const v = x[base + j]!;
      // v − v is 0 for every finite v and NaN for NaN and ±Inf.
      if (v - v !== 0) {
        nonfinite++;
        if (perUnit !== null) perUnit[j] = perUnit[j]! + 1;
        continue;
      }
      fires[j] = fires[j]! + (v > 0 ? 1 : 0);
      abs[j] = abs[j]! + Math.abs(v);
      sq[j] = sq[j]! + v * v;
    }
  }
  return nonfinite;
}
