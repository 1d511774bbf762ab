/**
 * Publishes one small snapshot per layer through the TypeScript SDK (SnapshotPublisher), for tests in
 * another language that compare what each SDK does with the same keys (the Python package's
 * partitioner test).
 *
 *   node --import tsx test/support/publish-snapshots.ts BROKERS TOPIC RUN_ID LAYER...
 *
 * Prints the publisher's final stats as JSON on stdout.
 */
import { SnapshotPublisher } from "../../src/publisher/snapshot-publisher.js";

const [brokers, topic, run_id, ...layers] = process.argv.slice(2);
if (!brokers || !topic || !run_id || layers.length === 0) {
  console.error("usage: publish-snapshots.ts BROKERS TOPIC RUN_ID LAYER...");
  process.exit(2);
}
const publisher = new SnapshotPublisher({ brokers: brokers.split(","), topic });
await publisher.connect();
for (const layer of layers) {
  await publisher.publish({
    run_id,
    layer,
    rank: 0,
    step: 0,
    time: Date.now(),
    unit_offset: 0,
    unit_count: 1,
    layer_units: 1,
    samples: 1,
    stats: { kind: "counts", fires: Uint32Array.from([1]), abs_sum: null, sq_sum: null },
  });
}
console.log(JSON.stringify(await publisher.close({ timeout_ms: 60_000 })));
