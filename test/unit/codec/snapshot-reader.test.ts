import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  CodecError,
  canonicalForm,
  decodeSnapshot,
  defaultSnapshotCodec,
  encodeSnapshot,
  SnapshotCodec,
  snapshotSchema,
  validateSnapshot,
} from "../../../src/codec/index.js";
import { snapshotFromAvro, snapshotToAvro } from "../../../src/codec/snapshot-codec.js";
import { DIRECT_READER_CANONICAL_FORM } from "../../../src/codec/snapshot-reader.js";
import type { ActivationSnapshot } from "../../../src/core/snapshot.js";
import { propertyParams } from "../../support/property.js";
import { countsSnapshot, plain, rawSnapshot } from "./fixtures.js";

/** What avsc alone makes of a message: the result, or the error's code and message. */
function throughAvsc(buf: Buffer): unknown {
  try {
    const rec = defaultSnapshotCodec.objectType.decode(buf) as Parameters<typeof snapshotFromAvro>[0];
    return plain(validateSnapshot(snapshotFromAvro(rec)));
  } catch (err) {
    assert.ok(err instanceof CodecError, String(err));
    return { code: err.code, message: err.message };
  }
}

function decoded(buf: Buffer): unknown {
  try {
    return plain(decodeSnapshot(buf));
  } catch (err) {
    assert.ok(err instanceof CodecError, String(err));
    return { code: err.code, message: err.message };
  }
}

/** Encodes without validating, so the arbitraries may produce what a buggy publisher would. */
function encodeUnchecked(s: ActivationSnapshot): Buffer {
  return defaultSnapshotCodec.objectType.encode(snapshotToAvro(s));
}

const u32 = (n: number) => fc.array(fc.nat({ max: 0xffffffff }), { minLength: n, maxLength: n });
const f32 = (n: number) => fc.array(fc.float({ noDefaultInfinity: false }), { minLength: n, maxLength: n });

const anySnapshot: fc.Arbitrary<ActivationSnapshot> = fc
  .record({
    run_id: fc.string({ maxLength: 40 }),
    layer: fc.string({ unit: "grapheme", maxLength: 20 }),
    rank: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    step: fc.oneof(fc.nat(), fc.integer({ min: -(2 ** 52), max: 2 ** 52 })),
    time: fc.nat({ max: 2 ** 52 }),
    unit_offset: fc.nat({ max: 70 }),
    unit_count: fc.integer({ min: 0, max: 12 }),
    layer_units: fc.integer({ min: 0, max: 90 }),
    samples: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    micro_batch: fc.nat({ max: 2 ** 31 - 1 }),
    incarnation: fc.nat({ max: 2 ** 52 }),
    raw: fc.boolean(),
    sums: fc.boolean(),
    nonfinite: fc.boolean(),
    seed: fc.nat(),
  })
  .chain((h) => {
    const n = h.unit_count;
    const stats = h.raw
      ? fc
          .record({
            dtype: fc.constantFrom("FLOAT32", "FLOAT16", "BFLOAT16" as const),
            values: fc.uint8Array({ maxLength: 48 }),
          })
          .map((r) => ({ kind: "raw" as const, ...r }))
      : fc
          .record({
            fires: u32(n),
            abs: f32(n),
            sq: f32(n),
            nf: u32(n),
          })
          .map((r) => ({
            kind: "counts" as const,
            fires: Uint32Array.from(r.fires),
            abs_sum: h.sums ? Float32Array.from(r.abs) : null,
            sq_sum: h.sums ? Float32Array.from(r.sq) : null,
            nonfinite: h.nonfinite ? Uint32Array.from(r.nf) : null,
          }));
    const { raw: _r, sums: _s, nonfinite: _n, seed: _seed, ...head } = h;
    return stats.map((st) => ({ ...head, stats: st }) as ActivationSnapshot);
  });

test("the shipped schema is the one the direct reader is written for", () => {
  assert.equal(canonicalForm(snapshotSchema), DIRECT_READER_CANONICAL_FORM);
  assert.equal(defaultSnapshotCodec.readsDirectly, true);
});

test("a codec on another reader schema decodes through avsc only", () => {
  const extended = structuredClone(snapshotSchema) as { fields: unknown[] };
  extended.fields.push({ name: "note", type: "string", default: "" });
  const codec = new SnapshotCodec(extended as typeof snapshotSchema);
  assert.equal(codec.readsDirectly, false);
  codec.addWriterSchema(snapshotSchema);
  const back = codec.decode(encodeSnapshot(countsSnapshot()));
  assert.deepEqual(plain(back), plain(countsSnapshot()));
});

test("the direct reader and avsc agree on every message, valid or not", () => {
  fc.assert(
    fc.property(anySnapshot, (s) => {
      const buf = encodeUnchecked(s);
      assert.deepEqual(decoded(buf), throughAvsc(buf));
    }),
    propertyParams(),
  );
});

test("the direct reader and avsc agree on truncated, extended and corrupted messages", () => {
  fc.assert(
    fc.property(
      anySnapshot,
      fc.nat(),
      fc.nat({ max: 255 }),
      fc.constantFrom("truncate", "append", "flip"),
      (s, where, byte, how) => {
        const good = encodeUnchecked(s);
        const at = 10 + (where % (good.length - 10));
        const buf =
          how === "truncate"
            ? good.subarray(0, at)
            : how === "append"
              ? Buffer.concat([good, Buffer.from([byte])])
              : Buffer.from(good).fill(byte, at, at + 1);
        assert.deepEqual(decoded(buf), throughAvsc(buf));
      },
    ),
    propertyParams(),
  );
});

test("varints longer than the direct reader takes are left to avsc", () => {
  for (const step of [2 ** 48, 2 ** 49, 2 ** 52, -(2 ** 52)]) {
    const buf = encodeUnchecked(countsSnapshot({ step }));
    assert.deepEqual(decoded(buf), throughAvsc(buf), String(step));
  }
});

/** The message at `shift` bytes into a fresh ArrayBuffer, as a fetch response would hold it. */
function placed(message: Buffer, shift: number): Buffer {
  const host = Buffer.alloc(message.length + 16);
  message.copy(host, shift);
  return host.subarray(shift, shift + message.length);
}

test("misaligned messages decode correctly; arrays are views of the message only where 4-aligned", () => {
  const s = countsSnapshot();
  assert.equal(s.stats.kind, "counts");
  if (s.stats.kind !== "counts") return;
  const message = encodeSnapshot(s);
  const fields = {
    fires: s.stats.fires,
    abs_sum: s.stats.abs_sum!,
    sq_sum: s.stats.sq_sum!,
    nonfinite: s.stats.nonfinite!,
  };
  /** Where each array's bytes sit in the message (the fixture's values are distinct). */
  const at = Object.fromEntries(
    Object.entries(fields).map(([name, a]) => [
      name,
      message.indexOf(Buffer.from(a.buffer, a.byteOffset, a.byteLength)),
    ]),
  );
  let views = 0;
  let copies = 0;
  for (let shift = 0; shift < 8; shift++) {
    const buf = placed(message, shift);
    const back = decodeSnapshot(buf);
    assert.deepEqual(plain(back), plain(s), `shift ${shift}`);
    if (back.stats.kind !== "counts") assert.fail("not counts");
    for (const name of Object.keys(fields) as Array<keyof typeof fields>) {
      const array: Uint32Array | Float32Array = back.stats[name]!;
      const aligned = (buf.byteOffset + at[name]!) % 4 === 0;
      assert.equal(array.buffer === buf.buffer, aligned, `${name} at shift ${shift}`);
      if (aligned) {
        assert.equal(array.byteOffset, buf.byteOffset + at[name]!);
        views++;
      } else {
        copies++;
      }
    }
  }
  assert.equal(views + copies, 32);
  assert.ok(views > 0 && copies > 0, `${views} views, ${copies} copies`);
});

test("raw values are a view of the message, whatever their alignment", () => {
  const s = rawSnapshot();
  const message = encodeSnapshot(s);
  for (let shift = 0; shift < 4; shift++) {
    const buf = placed(message, shift);
    const back = decodeSnapshot(buf);
    assert.deepEqual(plain(back), plain(s));
    assert.equal(back.stats.kind === "raw" && back.stats.values.buffer, buf.buffer);
  }
});

test("decoding leaves the message's bytes as they were", () => {
  for (const s of [countsSnapshot(), rawSnapshot()]) {
    for (let shift = 0; shift < 4; shift++) {
      const buf = placed(encodeSnapshot(s), shift);
      const before = Buffer.from(buf);
      decodeSnapshot(buf);
      assert.deepEqual(buf, before);
    }
  }
});

test("a transient decode copies misaligned arrays into memory the next transient decode reuses", () => {
  const a = countsSnapshot();
  const b = countsSnapshot({
    stats: {
      kind: "counts",
      fires: Uint32Array.from([5, 6, 7, 8]),
      abs_sum: null,
      sq_sum: null,
      nonfinite: null,
    },
  });
  const codec = new SnapshotCodec();
  // Shifted so that fires is misaligned in both: copied, not viewed.
  const shiftFor = (m: Buffer, s: ActivationSnapshot) => {
    const f = s.stats.kind === "counts" ? s.stats.fires : assert.fail();
    return (5 - (m.indexOf(Buffer.from(f.buffer, f.byteOffset, f.byteLength)) % 4)) % 4 || 1;
  };
  const ma = encodeSnapshot(a);
  const mb = encodeSnapshot(b);
  const first = codec.decode(placed(ma, shiftFor(ma, a)), undefined, { transient: true });
  assert.deepEqual(plain(first), plain(a));
  const firstFires = first.stats.kind === "counts" ? first.stats.fires : assert.fail();
  const kept = codec.decode(placed(ma, shiftFor(ma, a)));
  const second = codec.decode(placed(mb, shiftFor(mb, b)), undefined, { transient: true });
  assert.deepEqual(plain(second), plain(b));
  const secondFires = second.stats.kind === "counts" ? second.stats.fires : assert.fail();
  // Same memory: the first snapshot's fires now read the second's. That is the contract of `transient`.
  assert.equal(secondFires.buffer, firstFires.buffer);
  assert.equal(secondFires.byteOffset, firstFires.byteOffset);
  assert.deepEqual([...firstFires], [5, 6, 7, 8]);
  // A decode that is not transient gets copies of its own, which no later decode touches.
  assert.deepEqual(plain(kept), plain(a));
});

test("a transient arena grows for a bigger snapshot and the values stay right", () => {
  const codec = new SnapshotCodec();
  for (const units of [4, 4096, 8, 20_000, 3]) {
    const fires = Uint32Array.from({ length: units }, (_, i) => (i * 31) % 512);
    const s = countsSnapshot({
      unit_offset: 0,
      unit_count: units,
      layer_units: units,
      stats: { kind: "counts", fires, abs_sum: null, sq_sum: null, nonfinite: fires.map(() => 0) },
    });
    for (let shift = 0; shift < 4; shift++) {
      const back = codec.decode(placed(encodeSnapshot(s), shift), undefined, { transient: true });
      assert.deepEqual(plain(back), plain(s), `${units} units, shift ${shift}`);
    }
  }
});
