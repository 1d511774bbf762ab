import type { ActivationSnapshot } from "../core/snapshot.js";

/**
 * Where the activation probe hands its snapshots. The probe knows nothing of
 * Kafka or Avro: the Kafka publisher, a JSON-lines file or an in-memory list
 * all satisfy this, and publish resolves once the snapshot is accepted.
 */
export interface SnapshotSink {
  publish(snapshot: ActivationSnapshot): Promise<void>;
}

/** Keeps every snapshot in memory, in publish order: for in-process consumers and the demo's own checks. */
export class MemorySnapshotSink implements SnapshotSink {
  readonly snapshots: ActivationSnapshot[] = [];

  async publish(snapshot: ActivationSnapshot): Promise<void> {
    this.snapshots.push(snapshot);
  }
}
