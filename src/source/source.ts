/**
 * What a source of snapshot records is to the stream task: an adapter that
 * delivers batches of raw records per partition and tells which partitions it
 * currently owns; where the medium allows it, it also answers where a group
 * stopped (committed offsets), where a point in time falls (offsets by
 * timestamp), and moves (seek) and records (commit) positions. A source knows
 * nothing of what the records mean: decoding, the detector, limits, sinks and
 * telemetry all live downstream, in src/service and beyond.
 */

/** One record as the medium stored it; `offset` is a decimal string, as Kafka gives it. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | undefined>;
}

/** How a batch's values are encoded. */
export type RecordEncoding =
  /** Avro single-object encoding (magic, writer fingerprint, body): what the Kafka topic holds. */
  | { kind: "single-object" }
  /** Avro binary bodies written with the given schema (JSON): the records of a container file. */
  | { kind: "avro-binary"; writerSchema: string };

export interface RecordBatch {
  topic: string;
  partition: number;
  encoding: RecordEncoding;
  records: SourceRecord[];
  /** Offset after the newest record the medium holds for this partition, when it knows it (the lag). */
  highWatermark?: bigint;
}

/** What a handler may ask of the source while it works through a batch. */
export interface BatchControl {
  /** True once the batch no longer counts: the source seeked or lost the partition meanwhile. */
  isStale(): boolean;
  /** Keeps the source's membership alive during a long batch. */
  heartbeat(): Promise<void>;
}

export interface SourceHandler {
  /**
   * The full set of partitions the source owns now, told on every change (an
   * eager rebalance hands out the whole assignment again). The handler diffs
   * it against what it owned: partitions newly in it were assigned, those
   * missing were revoked.
   */
  assignment(partitions: readonly number[]): void;
  /**
   * Processes a batch; resolves with the offset of the last record it dealt
   * with (the source fetches from the next one), or undefined when it dealt
   * with none and the batch must be fetched again.
   */
  batch(batch: RecordBatch, control: BatchControl): Promise<bigint | undefined>;
}

/** Positions a source can keep and move; Kafka can, a file cannot. */
export interface OffsetControl {
  /** The committed offset of each partition, or undefined when the group never committed there. */
  committed(partitions: readonly number[]): Promise<Map<number, bigint | undefined>>;
  /** Per partition: the first offset whose timestamp is at or after `timeMs`, if any. */
  offsetsAt(timeMs: number): Promise<Map<number, bigint | undefined>>;
  /** Per partition: the offset after its newest record (where a live-only start begins). */
  endOffsets(partitions: readonly number[]): Promise<Map<number, bigint>>;
  /** The next batch of `partition` starts at `offset`. */
  seek(partition: number, offset: bigint): void;
  /** Records that everything below `offset` of `partition` is done. */
  commit(partition: number, offset: bigint): Promise<void>;
}

export interface SnapshotSource {
  /** What the source reads, for logs and metric labels: a topic or a file. */
  readonly topic: string;
  /** Present when the source can keep and move positions. */
  readonly offsets?: OffsetControl;
  /**
   * Resolves when the source stopped delivering for good because of an
   * error it does not recover from.
   */
  readonly failed: Promise<Error>;
  /** Starts delivering to `handler`; resolves once started (a file source: once every record was delivered). */
  start(handler: SourceHandler): Promise<void>;
  /** Stops fetching and releases the medium; the handler's batches in hand are the task's to finish. */
  stop(): Promise<void>;
  /** Why the source is not delivering yet, or undefined when it is. */
  notReadyReason(): string | undefined;
}
