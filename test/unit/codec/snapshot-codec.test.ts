import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  CODEC_ERROR_CODES,
  CodecError,
  type CodecErrorCode,
  decodeSnapshot,
  defaultSnapshotCodec,
  encodeSnapshot,
  fingerprintBytes,
  fingerprintOf,
  HEADER_BYTES,
  MAGIC,
  snapshotSchema,
  validateSnapshot,
} from "../../../src/codec/index.js";
import { snapshotToAvro } from "../../../src/codec/snapshot-codec.js";
import { float32FromLE, uint32FromLE } from "../../../src/codec/typed-bytes.js";
import type { ActivationSnapshot } from "../../../src/core/snapshot.js";
import { countsSnapshot, plain, rawSnapshot } from "./fixtures.js";

/** Encodes without validating: what a buggy trainer in another language could send. */
function encodeUnchecked(s: ActivationSnapshot): Buffer {
  return defaultSnapshotCodec.objectType.encode(snapshotToAvro(s));
}

const seenCodes = new Set<CodecErrorCode>();

function expectCode(fn: () => unknown, code: CodecErrorCode, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CodecError, `expected a CodecError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (field !== undefined) assert.equal(err.field, field, err.message);
    assert.match(err.message, new RegExp(`^${code}`));
    return true;
  });
  seenCodes.add(code);
}

test("a FiringCounts snapshot with both sums round-trips field for field", () => {
  const s = countsSnapshot();
  const buf = encodeSnapshot(s);
  assert.deepEqual([...buf.subarray(0, 2)], [0xc3, 0x01]);
  assert.equal(buf.readBigUInt64LE(2), fingerprintOf(snapshotSchema));
  assert.deepEqual(plain(decodeSnapshot(buf)), plain(s));
});

test("a FiringCounts snapshot without sums round-trips with null sums", () => {
  const s = countsSnapshot({
    stats: { kind: "counts", fires: Uint32Array.from([1, 2, 3, 4]), abs_sum: null, sq_sum: null },
  });
  const back = decodeSnapshot(encodeSnapshot(s));
  assert.deepEqual(plain(back), plain(s));
  assert.equal(back.stats.kind === "counts" && back.stats.abs_sum, null);
});

test("RawActivations round-trip for every dtype, bytes unchanged", () => {
  for (const [dtype, size] of [
    ["FLOAT32", 4],
    ["FLOAT16", 2],
    ["BFLOAT16", 2],
  ] as const) {
    const values = Uint8Array.from({ length: 3 * 2 * size }, (_, i) => (i * 37) & 0xff);
    const s = rawSnapshot({ stats: { kind: "raw", dtype, values } });
    assert.deepEqual(plain(decodeSnapshot(encodeSnapshot(s))), plain(s), dtype);
  }
});

test("decoded typed arrays are little-endian views when aligned and correct copies when not", () => {
  const bytes = new Uint8Array(4 * 3 + 1);
  const dv = new DataView(bytes.buffer);
  for (const [i, v] of [7, 0xffffffff, 65536].entries()) dv.setUint32(1 + i * 4, v, true);
  const unaligned = bytes.subarray(1);
  const copied = uint32FromLE(unaligned);
  assert.deepEqual([...copied], [7, 0xffffffff, 65536]);
  assert.notEqual(copied.buffer, bytes.buffer);

  // A Buffer slice is itself a view, which an unaligned copy must not rely on.
  const pooled = Buffer.from(bytes.buffer).subarray(1);
  assert.deepEqual([...uint32FromLE(pooled)], [7, 0xffffffff, 65536]);

  const aligned = new Uint8Array(12);
  aligned.set(unaligned);
  const viewed = uint32FromLE(aligned);
  assert.equal(viewed.buffer, aligned.buffer);
  assert.deepEqual([...viewed], [7, 0xffffffff, 65536]);

  const floats = Float32Array.from([1.5, -0]);
  assert.deepEqual([...float32FromLE(new Uint8Array(floats.buffer))], [1.5, -0]);
});

test("header errors: wrong magic, short header, unknown fingerprint, each named", () => {
  const good = encodeSnapshot(countsSnapshot());
  expectCode(() => decodeSnapshot(Buffer.from([0x4f, 0x62, ...good.subarray(2)])), "BAD_MAGIC");
  expectCode(() => decodeSnapshot(new Uint8Array([0x00])), "BAD_MAGIC");
  expectCode(() => decodeSnapshot(new Uint8Array([])), "TRUNCATED");
  expectCode(() => decodeSnapshot(good.subarray(0, 7)), "TRUNCATED");
  const unknown = Buffer.from(good);
  unknown[5]! ^= 0xff;
  assert.throws(() => decodeSnapshot(unknown), /UNKNOWN_FINGERPRINT.*not one this reader knows/);
  expectCode(() => decodeSnapshot(unknown), "UNKNOWN_FINGERPRINT");
});

test("body errors: truncated at any point, trailing bytes, bad union branch, unknown dtype index", () => {
  const good = encodeSnapshot(countsSnapshot());
  for (let cut = HEADER_BYTES; cut < good.length; cut++) {
    expectCode(() => decodeSnapshot(good.subarray(0, cut)), "TRUNCATED");
  }
  expectCode(() => decodeSnapshot(Buffer.concat([good, Buffer.from([0])])), "MALFORMED");

  const raw = encodeUnchecked(
    rawSnapshot({ stats: { kind: "raw", dtype: "BFLOAT16", values: new Uint8Array(12) } }),
  );
  // The body ends: union branch 1 (zig-zag 0x02), dtype index 2 (0x04), 12 value bytes (length 0x18),
  // then micro_batch 0 and incarnation 0 (one byte each).
  const at = raw.length - 2 - 12 - 3;
  assert.deepEqual([...raw.subarray(at, at + 3)], [0x02, 0x04, 0x18]);
  const badBranch = Buffer.from(raw);
  badBranch[at] = 0x06;
  expectCode(() => decodeSnapshot(badBranch), "MALFORMED");
  const badDtype = Buffer.from(raw);
  badDtype[at + 1] = 0x0a;
  expectCode(() => decodeSnapshot(badDtype), "UNKNOWN_DTYPE", "stats.dtype");
});

test("a message above maxMessageBytes is refused before it is parsed", () => {
  const buf = encodeSnapshot(countsSnapshot());
  expectCode(() => decodeSnapshot(buf, { maxMessageBytes: buf.length - 1 }), "TOO_LARGE");
  assert.equal(decodeSnapshot(buf, { maxMessageBytes: buf.length }).layer, "blocks.3.mlp.fc1");
});

const counts = (
  fires: number[],
  abs: number[] | null = null,
  sq: number[] | null = null,
  nonfinite: number[] | null = null,
) => ({
  kind: "counts" as const,
  fires: Uint32Array.from(fires),
  abs_sum: abs ? Float32Array.from(abs) : null,
  sq_sum: sq ? Float32Array.from(sq) : null,
  nonfinite: nonfinite ? Uint32Array.from(nonfinite) : null,
});

// Each contract violation, as it would arrive from a trainer: encode refuses it,
// and a decoder given the same bytes by a non-validating writer rejects it too.
const VIOLATIONS: [string, CodecErrorCode, string, Partial<ActivationSnapshot>][] = [
  ["empty run_id", "EMPTY_NAME", "run_id", { run_id: "" }],
  ["empty layer", "EMPTY_NAME", "layer", { layer: "" }],
  ["negative rank", "NEGATIVE", "rank", { rank: -1 }],
  ["negative step", "NEGATIVE", "step", { step: -5 }],
  ["negative time", "NEGATIVE", "time", { time: -1 }],
  ["negative unit_offset", "NEGATIVE", "unit_offset", { unit_offset: -4, unit_count: 4 }],
  ["zero samples", "NOT_POSITIVE", "samples", { samples: 0, stats: counts([0, 0, 0, 0]) }],
  ["zero unit_count", "NOT_POSITIVE", "unit_count", { unit_count: 0, stats: counts([]) }],
  ["zero layer_units", "NOT_POSITIVE", "layer_units", { layer_units: 0 }],
  ["shard past the layer's end", "UNIT_RANGE", "unit_offset", { unit_offset: 14 }],
  ["fires shorter than unit_count", "LENGTH_MISMATCH", "stats.fires", { stats: counts([1, 2, 3]) }],
  [
    "abs_sum longer than unit_count",
    "LENGTH_MISMATCH",
    "stats.abs_sum",
    { stats: counts([1, 2, 3, 4], [1, 2, 3, 4, 5]) },
  ],
  [
    "sq_sum shorter than unit_count",
    "LENGTH_MISMATCH",
    "stats.sq_sum",
    { stats: counts([1, 2, 3, 4], null, [1]) },
  ],
  ["fires above samples", "FIRES_EXCEED_SAMPLES", "stats.fires", { stats: counts([0, 513, 0, 0]) }],
  ["negative sq_sum", "BAD_SUM", "stats.sq_sum", { stats: counts([1, 1, 1, 1], null, [1, 1, -1, 1]) }],
  [
    "nonfinite longer than unit_count",
    "LENGTH_MISMATCH",
    "stats.nonfinite",
    { stats: counts([1, 2, 3, 4], null, null, [0, 0, 0, 0, 0]) },
  ],
  [
    "nonfinite above samples",
    "FIRES_EXCEED_SAMPLES",
    "stats.nonfinite",
    { stats: counts([0, 0, 0, 0], null, null, [0, 513, 0, 0]) },
  ],
  [
    "fires above the finite samples",
    "FIRES_EXCEED_SAMPLES",
    "stats.fires",
    { stats: counts([0, 0, 500, 0], null, null, [0, 0, 13, 0]) },
  ],
  ["negative micro_batch", "NEGATIVE", "micro_batch", { micro_batch: -1 }],
  ["negative incarnation", "NEGATIVE", "incarnation", { incarnation: -3 }],
  [
    "unit_count above the limit",
    "TOO_LARGE",
    "unit_count",
    { unit_count: 2 ** 20 + 1, layer_units: 2 ** 21 },
  ],
  ["layer name above the limit", "TOO_LARGE", "layer", { layer: "x".repeat(513) }],
];

test("every contract violation is refused by encode and by decode, naming the field", async (t) => {
  for (const [what, code, field, overrides] of VIOLATIONS) {
    await t.test(what, () => {
      const bad = countsSnapshot(overrides);
      expectCode(() => encodeSnapshot(bad), code, field);
      expectCode(() => decodeSnapshot(encodeUnchecked(bad)), code, field);
    });
  }
});

test("NaN and infinite sums are valid: the snapshot keeps its fires and round-trips", () => {
  const s = countsSnapshot({
    stats: counts(
      [1, 0, 2, 0],
      [1, Number.NaN, Number.POSITIVE_INFINITY, 0],
      [Number.NEGATIVE_INFINITY, 1, 1, Number.NaN],
    ),
  });
  const back = decodeSnapshot(encodeSnapshot(s));
  assert.deepEqual(plain(back), plain(s));
});

test("a nonfinite count up to samples, with fires within the rest, is valid", () => {
  const s = countsSnapshot({ stats: counts([0, 0, 256, 0], null, null, [512, 0, 256, 511]) });
  assert.deepEqual(plain(decodeSnapshot(encodeSnapshot(s))), plain(s));
});

test("micro_batch and incarnation round-trip; absent, they decode as 0", () => {
  const s = countsSnapshot({ micro_batch: 2 ** 31 - 1, incarnation: 2 ** 52 + 1 });
  const back = decodeSnapshot(encodeSnapshot(s));
  assert.equal(back.micro_batch, 2 ** 31 - 1);
  assert.equal(back.incarnation, 2 ** 52 + 1);
  assert.throws(() => encodeSnapshot(countsSnapshot({ micro_batch: 1.5 })), /MALFORMED \(micro_batch\)/);
  const { micro_batch: _m, incarnation: _i, ...bare } = countsSnapshot();
  const plainBack = decodeSnapshot(encodeSnapshot(bare));
  assert.deepEqual([plainBack.micro_batch, plainBack.incarnation], [0, 0]);
});

test("raw payload violations: wrong byte length, unknown dtype, too many values", () => {
  const values = new Uint8Array(3 * 2 * 4 + 1);
  expectCode(
    () => decodeSnapshot(encodeUnchecked(rawSnapshot({ stats: { kind: "raw", dtype: "FLOAT32", values } }))),
    "LENGTH_MISMATCH",
    "stats.values",
  );
  const f16 = rawSnapshot({ stats: { kind: "raw", dtype: "FLOAT16", values: new Uint8Array(24) } });
  expectCode(() => encodeSnapshot(f16), "LENGTH_MISMATCH", "stats.values");
  const unknown = rawSnapshot({
    stats: { kind: "raw", dtype: "FLOAT8" as "FLOAT16", values: new Uint8Array(6) },
  });
  expectCode(() => validateSnapshot(unknown), "UNKNOWN_DTYPE", "stats.dtype");
  const big = rawSnapshot({
    samples: 3,
    stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(24) },
  });
  expectCode(() => decodeSnapshot(encodeSnapshot(big), { maxRawValues: 5 }), "TOO_LARGE", "stats.values");
});

test("values outside Avro's types are MALFORMED, not a crash inside the encoder", () => {
  expectCode(() => encodeSnapshot(countsSnapshot({ rank: 1.5 })), "MALFORMED", "rank");
  expectCode(() => encodeSnapshot(countsSnapshot({ samples: 2 ** 31 })), "MALFORMED", "samples");
  const noStats = { ...countsSnapshot(), stats: { kind: "other" } } as unknown as ActivationSnapshot;
  expectCode(() => encodeSnapshot(noStats), "MALFORMED", "stats");
});

test("random corruption of a valid message yields a snapshot or a CodecError, never another failure", () => {
  const good = encodeSnapshot(countsSnapshot());
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(good.length),
      (edits, cut) => {
        const buf = Buffer.from(good.subarray(0, Math.max(cut, 1)));
        for (const [pos, byte] of edits) if (pos < buf.length) buf[pos] = byte;
        try {
          const s = decodeSnapshot(buf);
          assert.equal(validateSnapshot(s), s);
        } catch (err) {
          assert.ok(err instanceof CodecError, `not a CodecError: ${String(err)}`);
        }
      },
    ),
    { numRuns: 500, seed: 42 },
  );
});

test("every error code is exercised by the tests above", () => {
  // Keeps the code list and the tests in step: a new code needs a test that triggers it.
  assert.deepEqual([...seenCodes].sort(), [...CODEC_ERROR_CODES].sort());
});

test("CodecError carries a lower_snake_case reason for metric labels", () => {
  const err = new CodecError("FIRES_EXCEED_SAMPLES", "x", "stats.fires");
  assert.equal(err.reason, "fires_exceed_samples");
  for (const code of CODEC_ERROR_CODES) assert.match(code, /^[A-Z][A-Z_]*$/);
  assert.equal(MAGIC.length, 2);
  assert.equal(fingerprintBytes(1n).length, 8);
});
