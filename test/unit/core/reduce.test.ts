import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { decodeBfloat16, decodeFloat16, reduceRaw, SnapshotShapeError } from "../../../src/core/index.js";
import { reducePortable } from "../../../src/core/reduce.js";
import { propertyParams } from "../../support/property.js";

test("float16 bit patterns decode to their values", () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0],
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x3555, 0.333251953125],
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
  ];
  for (const [bits, value] of cases) assert.equal(decodeFloat16(bits), value, bits.toString(16));
  assert.ok(Number.isNaN(decodeFloat16(0x7e00)));
});

test("bfloat16 bit patterns decode to their values", () => {
  assert.equal(decodeBfloat16(0x3f80), 1);
  assert.equal(decodeBfloat16(0xc040), -3);
  assert.equal(decodeBfloat16(0x7f80), Number.POSITIVE_INFINITY);
  assert.ok(Number.isNaN(decodeBfloat16(0x7fc0)));
});

function sums(units: number) {
  return { fires: new Uint32Array(units), abs: new Float64Array(units), sq: new Float64Array(units) };
}

test("float32 rows reduce to fires, sum |h| and sum h^2", () => {
  // 5 samples × 3 units, row-major; the odd row count exercises the tail after groups of four.
  const values = Float32Array.from([1, 0, 0.5, 2, 0, 0, 0, -1, 0.5, 3, 0, 0.5, 0, 0, 0.5]);
  const out = sums(3);
  assert.equal(reduceRaw("FLOAT32", new Uint8Array(values.buffer), 5, 3, out), 0);
  assert.deepEqual([...out.fires], [3, 0, 4]);
  assert.deepEqual([...out.abs], [6, 1, 2]);
  assert.deepEqual([...out.sq], [14, 1, 1]);
});

test("NaN and ±Inf never fire, stay out of the sums and are counted", () => {
  const values = Float32Array.from([
    Number.NaN,
    1,
    Number.POSITIVE_INFINITY,
    2,
    Number.NEGATIVE_INFINITY,
    0,
    1,
    1,
  ]);
  const out = sums(2);
  assert.equal(reduceRaw("FLOAT32", new Uint8Array(values.buffer), 4, 2, out), 3);
  assert.deepEqual([...out.fires], [1, 3]);
  assert.deepEqual([...out.abs], [1, 4]);
});

test("16-bit dtypes and unaligned buffers reduce the same values", () => {
  const f16 = Uint16Array.from([0x3c00, 0x0000, 0x4000, 0x7e00]); // 1, 0, 2, NaN
  const shifted = new Uint8Array(9);
  shifted.set(new Uint8Array(f16.buffer), 1);
  const out = sums(2);
  assert.equal(reduceRaw("FLOAT16", shifted.subarray(1), 2, 2, out), 1);
  assert.deepEqual([...out.fires], [2, 0]);
  assert.deepEqual([...out.abs], [3, 0]);
  const bf = Uint16Array.from([0x3f80, 0xbf80]); // 1, -1
  const out2 = sums(2);
  assert.equal(reduceRaw("BFLOAT16", new Uint8Array(bf.buffer), 1, 2, out2), 0);
  assert.deepEqual([...out2.fires], [1, 0]);
  assert.deepEqual([...out2.sq], [1, 1]);
});

test("a Node Buffer at an odd offset of a larger pool reduces like an aligned copy", () => {
  // Decoded snapshots hand the detector subarrays of the fetched record; Buffer#slice is a
  // view there, so the misaligned path must copy without reading the rest of the pool.
  const f32 = Float32Array.from([1, 0, -2, 3, 0.5, 0]);
  const pool = Buffer.alloc(f32.byteLength + 7);
  pool.set(new Uint8Array(f32.buffer), 3);
  const misaligned = pool.subarray(3, 3 + f32.byteLength);
  const f16 = Buffer.alloc(2 * 4 + 3);
  f16.set(new Uint8Array(Uint16Array.from([0x3c00, 0x0000, 0x4000, 0x3c00]).buffer), 1);
  for (const reduce of [reduceRaw, reducePortable]) {
    const out = sums(3);
    assert.equal(reduce("FLOAT32", misaligned, 2, 3, out), 0);
    assert.deepEqual([...out.fires], [2, 1, 0]);
    assert.deepEqual([...out.abs], [4, 0.5, 2]);
    const out16 = sums(2);
    assert.equal(reduce("FLOAT16", f16.subarray(1, 9), 2, 2, out16), 0);
    assert.deepEqual([...out16.fires], [2, 1]);
  }
});

test("a byte length that does not match the shape is a typed error", () => {
  assert.throws(() => reduceRaw("FLOAT32", new Uint8Array(10), 2, 2, sums(2)), SnapshotShapeError);
});

test("the SIMD kernel and the portable loop agree with a scalar reference on any shape and value", () => {
  const value = fc.oneof(
    { weight: 8, arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 4, arbitrary: fc.constant(0) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0),
    },
  );
  const shape = fc
    .record({ samples: fc.integer({ min: 0, max: 9 }), units: fc.integer({ min: 1, max: 13 }) })
    .chain(({ samples, units }) =>
      fc.record({
        samples: fc.constant(samples),
        units: fc.constant(units),
        values: fc.array(value, { minLength: samples * units, maxLength: samples * units }),
      }),
    );
  fc.assert(
    fc.property(shape, ({ samples, units, values }) => {
      const x = Float32Array.from(values);
      const expected = sums(units);
      let nonfinite = 0;
      for (let s = 0; s < samples; s++) {
        for (let j = 0; j < units; j++) {
          const v = x[s * units + j]!;
          if (!Number.isFinite(v)) {
            nonfinite++;
            continue;
          }
          expected.fires[j]! += v > 0 ? 1 : 0;
          expected.abs[j]! += Math.abs(v);
          expected.sq[j]! += v * v;
        }
      }
      const bytes = new Uint8Array(x.buffer);
      const kernel = sums(units);
      assert.equal(reduceRaw("FLOAT32", bytes, samples, units, kernel), nonfinite);
      assert.deepEqual(kernel, expected, "same additions in the same order");
      const portable = sums(units);
      assert.equal(reducePortable("FLOAT32", bytes, samples, units, portable), nonfinite);
      assert.deepEqual(portable.fires, expected.fires);
      for (let j = 0; j < units; j++) {
        for (const k of ["abs", "sq"] as const) {
          const e = expected[k][j]!;
          assert.ok(Math.abs(portable[k][j]! - e) <= 1e-12 * Math.abs(e), `${k}[${j}]`);
        }
      }
    }),
    propertyParams({ numRuns: 300 }),
  );
});

test("a kernel-sized snapshot reduces like the portable loop, for every dtype", () => {
  const units = 1030; // not a multiple of 4: the last columns take the scalar path
  const samples = 7;
  const bits = new Uint16Array(units * samples);
  for (let i = 0; i < bits.length; i++) bits[i] = (i * 2654435761) >>> 16;
  for (const dtype of ["FLOAT16", "BFLOAT16"] as const) {
    const a = sums(units);
    const b = sums(units);
    const bytes = new Uint8Array(bits.buffer);
    assert.equal(reduceRaw(dtype, bytes, samples, units, a), reducePortable(dtype, bytes, samples, units, b));
    assert.deepEqual(a.fires, b.fires);
    assert.ok(a.fires.some((f) => f > 0));
  }
});
