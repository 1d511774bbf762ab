/**
 * The changelog state store over fakes of the reader and the writer (no
 * broker): what it writes, when, the tombstones, and what a restore gives back
 * (the integration tests run it against the real broker).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import { type CheckpointRecord, encodeCheckpoint } from "../../../src/codec/checkpoint-codec.js";
import { type ActivationSnapshot, Detector } from "../../../src/core/index.js";
import {
  type ChangelogReader,
  ChangelogStore,
  type ChangelogWriter,
} from "../../../src/service/changelog-store.js";

const T0 = 1_700_000_000_000;

/** A partitioned log that keeps every record in order, as the topic does before compaction. */
class FakeLog implements ChangelogReader, ChangelogWriter {
  readonly partitions = new Map<number, CheckpointRecord[]>();
  writes = 0;
  async write(partition: number, records: readonly CheckpointRecord[]): Promise<void> {
    this.writes++;
    const log = this.partitions.get(partition) ?? [];
    log.push(...records);
    this.partitions.set(partition, log);
  }
  async read(partitions: readonly number[]): Promise<Map<number, CheckpointRecord[]>> {
    return new Map(partitions.map((p) => [p, [...(this.partitions.get(p) ?? [])]]));
  }
}

function snap(layer: string, step: number, fires: number): ActivationSnapshot {
  return {
    run_id: "run/1",
    layer,
    rank: 0,
    step,
    time: T0 + step,
    unit_offset: 0,
    unit_count: 4,
    layer_units: 4,
    samples: 8000,
    stats: { kind: "counts", fires: Uint32Array.from([fires, 0, fires, fires]), abs_sum: null, sq_sum: null },
  };
}

function logger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

/** A detector that saw `steps` snapshots of layers fc1 and fc2. */
function detectorAfter(steps: number): Detector {
  const d = new Detector();
  for (let i = 0; i < steps; i++) {
    d.apply(snap("fc1", 10 + 100 * i, 500), T0);
    d.apply(snap("fc2", 10 + 100 * i, i < 2 ? 500 : 0), T0);
  }
  return d;
}

const LAYERS = [
  { run_id: "run/1", layer: "fc1" },
  { run_id: "run/1", layer: "fc2" },
];

/** What a layer holds, comparable across detectors. */
function image(d: Detector, layer: string): unknown {
  const cp = d.checkpoint("run/1", layer);
  return cp === undefined
    ? undefined
    : encodeCheckpoint(cp, []).map((r) => Buffer.from(r.value ?? []).toString("hex"));
}

describe("ChangelogStore", () => {
  test("a forced checkpoint restores into a fresh detector at its position; unknown partitions get none", async () => {
    const fake = new FakeLog();
    const a = detectorAfter(5);
    const { log } = logger();
    await new ChangelogStore(a, fake, fake, { intervalMs: 60_000, log }).checkpoint(2, 17n, LAYERS, true);
    const b = new Detector();
    const restored = await new ChangelogStore(b, fake, fake, { intervalMs: 60_000, log }).restore([2, 3]);
    assert.deepEqual(
      restored,
      new Map([
        [2, 17n],
        [3, undefined],
      ]),
    );
    assert.deepEqual(image(b, "fc1"), image(a, "fc1"));
    assert.deepEqual(image(b, "fc2"), image(a, "fc2"));
    assert.deepEqual(b.summary("run/1", "fc2"), a.summary("run/1", "fc2"));
  });

  test("cadence: a write younger than the interval is skipped unless forced", async () => {
    const fake = new FakeLog();
    let now = T0;
    const store = new ChangelogStore(detectorAfter(3), fake, fake, {
      intervalMs: 1000,
      log: logger().log,
      now: () => now,
    });
    // A partition without layers writes nothing, and that does not delay its first real checkpoint.
    assert.equal(store.prepareCheckpoint(0, 4n, []), undefined);
    await store.checkpoint(0, 5n, LAYERS);
    assert.equal(fake.writes, 1);
    await store.checkpoint(0, 6n, LAYERS);
    assert.equal(fake.writes, 1);
    await store.checkpoint(0, 7n, LAYERS, true);
    assert.equal(fake.writes, 2);
    now += 1000;
    await store.checkpoint(0, 8n, LAYERS);
    assert.equal(fake.writes, 3);
    assert.deepEqual(
      await new ChangelogStore(new Detector(), fake, fake, { intervalMs: 0, log: logger().log }).restore([0]),
      new Map([[0, 8n]]),
    );
  });

  test("cadence: partitions written together first are spread over the interval after, none waiting longer", async () => {
    const fake = new FakeLog();
    let now = T0;
    const interval = 60_000;
    const store = new ChangelogStore(detectorAfter(3), fake, fake, {
      intervalMs: interval,
      log: logger().log,
      now: () => now,
    });
    const partitions = [0, 1, 2, 3, 4, 5, 6, 7];
    const writes = new Map(partitions.map((p) => [p, [] as number[]]));
    // A commit a second, as the stream task makes them, for three intervals.
    for (; now <= T0 + 3 * interval; now += 1000) {
      for (const p of partitions)
        if (store.prepareCheckpoint(p, BigInt(now), LAYERS)) writes.get(p)!.push(now - T0);
    }
    for (const p of partitions) {
      const times = writes.get(p)!;
      assert.equal(times[0], 0, `partition ${p} is written at its first commit`);
      for (let i = 1; i < times.length; i++)
        assert.ok(times[i]! - times[i - 1]! <= interval, `partition ${p}: ${times}`);
    }
    // The second round: one partition at a time, each at least a twelfth of the interval from the next (an even spread would be an eighth).
    const second = partitions.map((p) => writes.get(p)![1]!).sort((a, b) => a - b);
    for (let i = 1; i < second.length; i++)
      assert.ok(second[i]! - second[i - 1]! >= interval / 12, `${second}`);
  });

  test("a layer no longer written (evicted or dropped) is tombstoned, even after a restart", async () => {
    const fake = new FakeLog();
    const { log } = logger();
    await new ChangelogStore(detectorAfter(3), fake, fake, { intervalMs: 0, log }).checkpoint(
      0,
      5n,
      LAYERS,
      true,
    );
    // A new process restores, then writes only fc1: fc2's keys must go.
    const d = new Detector();
    const store = new ChangelogStore(d, fake, fake, { intervalMs: 0, log });
    await store.restore([0]);
    d.dropLayer("run/1", "fc2");
    await store.checkpoint(0, 9n, LAYERS, true);
    const tail = fake.partitions.get(0)!.slice(-2);
    assert.deepEqual(
      tail.map((r) => [r.key, r.value]),
      [
        ["run%2F1/fc2/m", null],
        ["run%2F1/fc2/0", null],
      ],
    );
    const fresh = new Detector();
    assert.deepEqual(
      await new ChangelogStore(fresh, fake, fake, { intervalMs: 0, log }).restore([0]),
      new Map([[0, 9n]]),
    );
    assert.equal(fresh.checkpoint("run/1", "fc2"), undefined);
    assert.notEqual(fresh.checkpoint("run/1", "fc1"), undefined);
  });

  test("a checkpoint that does not decode is logged once with its code and sends the partition to the lookback", async () => {
    const fake = new FakeLog();
    const { log, lines } = logger();
    await new ChangelogStore(detectorAfter(3), fake, fake, { intervalMs: 0, log }).checkpoint(
      0,
      5n,
      LAYERS,
      true,
    );
    // fc2's chunk is damaged: its hash no longer matches what the manifest names.
    const records = fake.partitions.get(0)!;
    const chunk = records.find((r) => r.key === "run%2F1/fc2/0")!;
    const damaged = Uint8Array.from(chunk.value!);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1]! + 1) % 256;
    chunk.value = damaged;
    const d = new Detector();
    assert.deepEqual(
      await new ChangelogStore(d, fake, fake, { intervalMs: 0, log }).restore([0]),
      new Map([[0, undefined]]),
    );
    assert.deepEqual(d.layerIds(), []);
    const failures = lines.filter((l) => l.event === "state_restore_failed");
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.code, "CHECKPOINT_CORRUPT");
    assert.equal(failures[0]!.layer, "fc2");
  });
});
