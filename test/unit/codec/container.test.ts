import assert from "node:assert/strict";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, test } from "node:test";
import avro from "avsc";
import {
  CodecError,
  readSnapshotContainer,
  snapshotSchema,
  writeSnapshotContainer,
} from "../../../src/codec/index.js";
import { snapshotToAvro } from "../../../src/codec/snapshot-codec.js";
import type { ActivationSnapshot } from "../../../src/core/snapshot.js";
import { countsSnapshot, plain, rawSnapshot } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "reluwatch-container-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A container written straight through avsc, bypassing the codec's validation. */
function writeWith(type: avro.Type, path: string, records: unknown[]): Promise<void> {
  return pipeline(
    Readable.from(records),
    new avro.streams.BlockEncoder(type, { codec: "deflate" }),
    createWriteStream(path),
  );
}

async function readAll(path: string): Promise<ActivationSnapshot[]> {
  const out: ActivationSnapshot[] = [];
  for await (const s of readSnapshotContainer(path)) out.push(s);
  return out;
}

test("a deflate container file round-trips many snapshots of both kinds, in order", async () => {
  const snapshots: ActivationSnapshot[] = [];
  for (let i = 0; i < 300; i++)
    snapshots.push(i % 3 === 0 ? rawSnapshot({ step: i }) : countsSnapshot({ step: i }));
  const path = join(dir, "mixed.avro");
  await writeSnapshotContainer(path, snapshots);

  const header = readFileSync(path);
  assert.deepEqual([...header.subarray(0, 4)], [0x4f, 0x62, 0x6a, 0x01]);
  assert.match(header.subarray(0, 8192).toString("latin1"), /avro\.codec.{1,2}deflate/);
  const back = await readAll(path);
  assert.equal(back.length, 300);
  assert.deepEqual(back.map(plain), snapshots.map(plain));
});

test("an async iterable source works, and an empty one makes a readable empty file", async () => {
  async function* gen() {
    for (let step = 0; step < 5; step++) yield countsSnapshot({ step });
  }
  const path = join(dir, "async.avro");
  await writeSnapshotContainer(path, gen());
  assert.deepEqual(
    (await readAll(path)).map((s) => s.step),
    [0, 1, 2, 3, 4],
  );
  const empty = join(dir, "empty.avro");
  await writeSnapshotContainer(empty, []);
  assert.deepEqual(await readAll(empty), []);
});

test("writing refuses an invalid snapshot with its CodecError", async () => {
  await assert.rejects(
    writeSnapshotContainer(join(dir, "bad.avro"), [countsSnapshot({ samples: 0 })]),
    (e: unknown) => e instanceof CodecError && e.code === "NOT_POSITIVE",
  );
});

test("a file written by an older schema version reads into the current one", async () => {
  const older = structuredClone(snapshotSchema) as unknown as { fields: { name: string }[] };
  older.fields = older.fields.filter((f) => f.name !== "unit_offset");
  const type = avro.Type.forSchema(older as unknown as avro.Schema, { wrapUnions: "auto" });
  const path = join(dir, "older.avro");
  const { unit_offset: _, ...record } = snapshotToAvro(countsSnapshot({ unit_offset: 0, step: 9 }));
  await writeWith(type, path, [record]);
  const [back] = await readAll(path);
  assert.equal(back?.unit_offset, 0);
  assert.equal(back?.step, 9);
});

test("a file that is not a container, and a container that breaks the contract, fail with CodecErrors", async () => {
  const junk = join(dir, "junk.avro");
  writeFileSync(junk, "not an avro file at all");
  await assert.rejects(readAll(junk), (e: unknown) => e instanceof CodecError && e.code === "MALFORMED");

  const path = join(dir, "invalid.avro");
  const type = avro.Type.forSchema(snapshotSchema, { wrapUnions: "auto" });
  await writeWith(type, path, [snapshotToAvro(countsSnapshot({ unit_offset: 15 }))]);
  await assert.rejects(readAll(path), (e: unknown) => e instanceof CodecError && e.code === "UNIT_RANGE");
  await assert.rejects(readAll(join(dir, "missing.avro")), /ENOENT/);
});
