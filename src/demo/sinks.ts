/** Sinks the demo trainer composes: it counts what it publishes and may write to several places at once. */
import type { ActivationSnapshot } from "../core/snapshot.js";
import type { SnapshotSink } from "../publisher/probe.js";

/** Counts snapshots and hands each to every downstream sink, in order. */
export class FanOutSink implements SnapshotSink {
  count = 0;
  constructor(private readonly sinks: readonly SnapshotSink[]) {}

  async publish(s: ActivationSnapshot): Promise<void> {
    this.count++;
    for (const sink of this.sinks) await sink.publish(s);
  }
}
