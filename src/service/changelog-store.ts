/**
 * The state store over the changelog topic (docs/state.md): the detector's
 * layers, checkpointed into the changelog partition of the input partition
 * they arrive on, and restored from it on assignment.
 *
 * A partition's layers are written together at one position (the next input
 * offset they have not seen), so the partition resumes from one offset. A
 * checkpoint that does not decode or restore (CHECKPOINT_* codes, a window
 * mismatch) is logged once and sends its whole partition to the time
 * lookback: none of the partition's stored layers is used, so no layer is
 * both restored and rebuilt from input it already counted.
 *
 *     store.restore([3])                       // → Map { 3 → 18234n }: input 3 resumes at 18234
 *     store.checkpoint(3, 18300n, layers)      // skipped if partition 3 was written < interval ago
 *     store.checkpoint(3, 18300n, layers, true) // revocation, shutdown: always written
 *     store.prepareCheckpoint(3, 18300n, layers) // the same records, taken now, written by the caller
 *
 * After a write that failed (an aborted transaction) the bookkeeping of what
 * was written is wrong until the partition's next `restore`, which re-reads it:
 * the stream task restores every partition whose commit failed.
 */
import {
  type CheckpointRecord,
  checkpointKeys,
  decodeCheckpoint,
  encodeCheckpoint,
  parseCheckpointKey,
} from "../codec/checkpoint-codec.js";
import type { Detector } from "../core/index.js";
import type { Logger } from "../log.js";
import type { LayerId, PendingCheckpoint, StateStore } from "./stream-task.js";

/** Reads changelog partitions from their beginning to their end offset at the call. */
export interface ChangelogReader {
  read(partitions: readonly number[]): Promise<Map<number, CheckpointRecord[]>>;
}

/** Writes records to explicit changelog partitions; resolves once they are acknowledged by every in-sync replica. */
export interface ChangelogWriter {
  write(partition: number, records: readonly CheckpointRecord[]): Promise<void>;
}

export interface ChangelogStoreOptions {
  /** A partition's cadence write is skipped while its last write is younger than this. */
  intervalMs: number;
  log: Logger;
  now?: () => number;
}

const layerId = (run_id: string, layer: string) => `${run_id}\u0000${layer}`;

/**
 * Where in the interval a partition's cadence writes fall, as a share of it. Partitions assigned
 * together would otherwise be written together, every layer of the instance in one commit once an
 * interval: a burst of encoding and producing that input waits behind, which on a busy instance
 * becomes a backlog. Its first write is counted as `phase` of an interval old, so its second comes
 * that much sooner and no gap exceeds the interval. Multiples of the golden ratio's fractional part
 * spread any number of partitions nearly evenly: partitions 0 to 7 at 0, 0.62, 0.24, 0.85, 0.47,
 * 0.09, 0.71 and 0.33 of the interval.
 */
export function checkpointPhase(partition: number): number {
  return (partition * 0.6180339887498949) % 1;
}

export class ChangelogStore implements StateStore {
  /** Per partition: the chunk count last written (or read) for each layer, by run\0layer. */
  private readonly written = new Map<number, Map<string, { id: LayerId; chunks: number }>>();
  private readonly lastWrite = new Map<number, number>();
  private readonly now: () => number;

  constructor(
    private readonly detector: Detector,
    private readonly reader: ChangelogReader,
    private readonly writer: ChangelogWriter,
    private readonly options: ChangelogStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async restore(partitions: readonly number[]): Promise<Map<number, bigint | undefined>> {
    const read = await this.reader.read(partitions);
    const out = new Map<number, bigint | undefined>();
    for (const partition of partitions) {
      out.set(partition, this.restorePartition(partition, read.get(partition) ?? []));
    }
    return out;
  }

  checkpoint(partition: number, position: bigint, layers: Iterable<LayerId>, force = false): Promise<void> {
    return this.prepareCheckpoint(partition, position, layers, force)?.write() ?? Promise.resolve();
  }

  prepareCheckpoint(
    partition: number,
    position: bigint,
    layers: Iterable<LayerId>,
    force = false,
  ): PendingCheckpoint | undefined {
    const now = this.now();
    const last = this.lastWrite.get(partition);
    if (!force && last !== undefined && now - last < this.options.intervalMs) return undefined;
    // Encoded now, before returning: the checkpoint's arrays are views of state the next record changes.
    const records: CheckpointRecord[] = [];
    const before = this.written.get(partition) ?? new Map<string, { id: LayerId; chunks: number }>();
    const after = new Map<string, { id: LayerId; chunks: number }>();
    const positions = [{ partition, offset: position.toString() }];
    for (const id of layers) {
      const key = layerId(id.run_id, id.layer);
      if (after.has(key)) continue;
      const cp = this.detector.checkpoint(id.run_id, id.layer);
      if (cp === undefined) continue; // evicted: tombstoned below if it was ever written
      const encoded = encodeCheckpoint(cp, positions);
      const chunks = encoded.length - 1;
      records.push(...encoded);
      const old = before.get(key)?.chunks ?? 0;
      // Chunk keys the new manifest does not name would hold stale data forever on a compacted topic.
      records.push(...tombstones(checkpointKeys(id.run_id, id.layer, old).chunks.slice(chunks)));
      after.set(key, { id: { run_id: id.run_id, layer: id.layer }, chunks });
    }
    for (const [key, { id, chunks }] of before) {
      if (after.has(key)) continue;
      const keys = checkpointKeys(id.run_id, id.layer, chunks);
      // The manifest first: a reader never meets a manifest whose chunks are gone.
      records.push(...tombstones([keys.manifest, ...keys.chunks]));
    }
    this.written.set(partition, after);
    // Only a write starts the interval: a partition with no layers yet must not delay its first checkpoint.
    if (records.length === 0) return undefined;
    this.lastWrite.set(
      partition,
      last === undefined ? now - checkpointPhase(partition) * this.options.intervalMs : now,
    );
    return { partition, records, write: () => this.writer.write(partition, records) };
  }

  /** Restores one partition's layers; the offset they all cover, or undefined to fall back to the lookback. */
  private restorePartition(partition: number, records: readonly CheckpointRecord[]): bigint | undefined {
    const byLayer = new Map<string, { id: LayerId; records: CheckpointRecord[] }>();
    for (const r of records) {
      const k = parseCheckpointKey(r.key);
      if (k === null) continue;
      const key = layerId(k.run_id, k.layer);
      let entry = byLayer.get(key);
      if (entry === undefined) {
        entry = { id: { run_id: k.run_id, layer: k.layer }, records: [] };
        byLayer.set(key, entry);
      }
      entry.records.push(r);
    }
    // Keys whose newest value is a tombstone are gone; a layer with no live manifest is not stored.
    const decoded = [];
    const known = new Map<string, { id: LayerId; chunks: number }>();
    for (const [key, { id, records: rs }] of byLayer) {
      const newest = new Map<string, CheckpointRecord>();
      for (const r of rs) newest.set(r.key, r);
      if (newest.get(checkpointKeys(id.run_id, id.layer, 0).manifest)?.value == null) {
        // Leftover chunk keys still count, so the next write tombstones them.
        if (maxChunk(newest) > 0) known.set(key, { id, chunks: maxChunk(newest) });
        continue;
      }
      try {
        const d = decodeCheckpoint(rs);
        const at = d.positions.find((p) => p.partition === partition);
        if (at === undefined) throw new Error(`no position for partition ${partition}`);
        decoded.push({ key, d, offset: BigInt(at.offset) });
        known.set(key, { id, chunks: Math.max(d.chunks, maxChunk(newest)) });
      } catch (err) {
        this.written.set(partition, known);
        this.fallback(partition, id, err);
        return undefined;
      }
    }
    const restored: LayerId[] = [];
    let position: bigint | undefined;
    for (const { d, offset, key } of decoded) {
      try {
        this.detector.restore(d.checkpoint);
      } catch (err) {
        for (const id of restored) this.detector.dropLayer(id.run_id, id.layer);
        this.written.set(partition, known);
        this.fallback(partition, known.get(key)!.id, err);
        return undefined;
      }
      restored.push({ run_id: d.checkpoint.run_id, layer: d.checkpoint.layer });
      if (position === undefined || offset < position) position = offset;
    }
    this.written.set(partition, known);
    if (restored.length > 0) {
      this.options.log.info(
        { event: "state_restored", partition, layers: restored.length, position: position?.toString() },
        "restored layer state from the changelog",
      );
    }
    return position;
  }

  private fallback(partition: number, id: LayerId, err: unknown): void {
    const code = (err as { code?: unknown }).code;
    this.options.log.warn(
      {
        event: "state_restore_failed",
        partition,
        run_id: id.run_id,
        layer: id.layer,
        code: typeof code === "string" ? code : undefined,
        error: err instanceof Error ? err.message : String(err),
      },
      "stored state not usable; the partition is rebuilt from the restore lookback",
    );
  }
}

function tombstones(keys: readonly string[]): CheckpointRecord[] {
  return keys.map((key) => ({ key, value: null }));
}

/** One more than the highest chunk index among the keys (the count to tombstone up to). */
function maxChunk(newest: ReadonlyMap<string, CheckpointRecord>): number {
  let n = 0;
  for (const [key, r] of newest) {
    const part = parseCheckpointKey(key)?.part;
    if (typeof part === "number" && r.value !== null) n = Math.max(n, part + 1);
  }
  return n;
}
