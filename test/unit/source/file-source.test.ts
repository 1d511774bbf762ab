/**
 * The container-file source adapter without the task: what it hands a
 * handler (assignment, batches of Avro bodies with the writer schema) and
 * how it fails on a file that is not a container.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { decodeSnapshotBody, writeSnapshotContainer } from "../../../src/codec/index.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { ContainerFileSource, ContainerReadError } from "../../../src/source/file-source.js";
import type { RecordBatch, SnapshotSource, SourceHandler } from "../../../src/source/source.js";

const dir = mkdtempSync(join(tmpdir(), "reluwatch-file-source-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function recorder(stopAfter = Number.POSITIVE_INFINITY) {
  const assignments: number[][] = [];
  const batches: RecordBatch[] = [];
  const handler: SourceHandler = {
    assignment: (p) => void assignments.push([...p]),
    async batch(batch, control) {
      assert.equal(control.isStale(), false);
      batches.push(batch);
      // Dealing with none of the records tells the source to stop.
      return batches.length > stopAfter ? undefined : BigInt(batch.records.at(-1)!.offset);
    },
  };
  return { handler, assignments, batches };
}

describe("ContainerFileSource", () => {
  const fleet = [...generateFleet(resolveScenario("healthy", { units: 8, steps: 3000, layers: 2 }))];

  test("each file is a partition and each record an offset; bodies decode with the batch's writer schema", async () => {
    const a = join(dir, "a.avro");
    const b = join(dir, "b.avro");
    await writeSnapshotContainer(a, fleet.slice(0, 300));
    await writeSnapshotContainer(b, fleet.slice(300, 310));
    const progress: Array<[string, number]> = [];
    const source = new ContainerFileSource([a, b], (file, n) => void progress.push([file, n]));
    assert.equal((source as SnapshotSource).offsets, undefined, "a file keeps no positions");
    const r = recorder();
    await source.start(r.handler);
    assert.deepEqual(r.assignments, [[0, 1]]);
    assert.deepEqual(
      r.batches.map((x) => [x.partition, x.records.length, x.records[0]!.offset]),
      [
        [0, 256, "0"],
        [0, 44, "256"],
        [1, 10, "0"],
      ],
    );
    const decoded = r.batches.flatMap((x) =>
      x.records.map((rec) => {
        assert.equal(x.encoding.kind, "avro-binary");
        return decodeSnapshotBody(rec.value!, (x.encoding as { writerSchema: string }).writerSchema);
      }),
    );
    assert.deepEqual(
      decoded.map((s) => [s.run_id, s.layer, s.rank, s.step]),
      fleet.slice(0, 310).map((s) => [s.run_id, s.layer, s.rank, s.step]),
    );
    assert.deepEqual(progress.at(-1), [b, 310]);
  });

  test("a handler that deals with no record of a batch stops the reading", async () => {
    const a = join(dir, "long.avro");
    await writeSnapshotContainer(a, fleet.slice(0, 1000));
    const r = recorder(1);
    await new ContainerFileSource([a]).start(r.handler);
    assert.equal(r.batches.length, 2);
  });

  test("a file that is not a container fails start() with the file named; a missing one with its code", async () => {
    const junk = join(dir, "junk.avro");
    writeFileSync(junk, "not a container\n");
    await assert.rejects(new ContainerFileSource([junk]).start(recorder().handler), (err: unknown) => {
      assert.ok(err instanceof ContainerReadError);
      assert.equal(err.file, junk);
      assert.match(err.message, /is not a readable snapshot container/);
      return true;
    });
    await assert.rejects(
      new ContainerFileSource([join(dir, "missing.avro")]).start(recorder().handler),
      /cannot read \(ENOENT\)/,
    );
  });

  test("errors of the handler pass through unchanged", async () => {
    const a = join(dir, "small.avro");
    await writeSnapshotContainer(a, fleet.slice(0, 3));
    const boom = new Error("the task failed");
    await assert.rejects(
      new ContainerFileSource([a]).start({
        assignment: () => {},
        batch: async () => {
          throw boom;
        },
      }),
      (err: unknown) => err === boom,
    );
  });
});
