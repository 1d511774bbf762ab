import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeBfloat16, decodeFloat16, reduceRaw, SnapshotShapeError } from "../../../src/core/index.js";

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

test("a byte length that does not match the shape is a typed error", () => {
  assert.throws(() => reduceRaw("FLOAT32", new Uint8Array(10), 2, 2, sums(2)), SnapshotShapeError);
});
