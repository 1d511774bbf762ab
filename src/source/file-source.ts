/**
 * The Avro container-file adapter: each file is one partition (in the order
 * given), each record one offset (its index in the file), delivered in
 * batches as the Avro binary body its writer schema encoded, so the stream
 * task decodes and validates it like a Kafka message. A file keeps no
 * positions: there is nothing to seek to or commit, and everything is live.
 */
import { createReadStream } from "node:fs";
import avro from "avsc";
import type { RecordBatch, SnapshotSource, SourceHandler, SourceRecord } from "./source.js";

/** Records handed to the task at once. */
const BATCH_RECORDS = 256;

/** A file that is not a readable container (its records may still be bad one by one: those the task judges). */
export class ContainerReadError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ContainerReadError";
  }
}

export class ContainerFileSource implements SnapshotSource {
  readonly topic = "files";
  /** Never resolves: a file source's failures reject start(). */
  readonly failed = new Promise<Error>(() => {});
  private stopping = false;

  constructor(
    private readonly files: readonly string[],
    /** Told the records delivered so far, after each batch. */
    private readonly onProgress?: (file: string, records: number) => void,
  ) {}

  notReadyReason(): string | undefined {
    return this.stopping ? "shutting down" : undefined;
  }

  async start(handler: SourceHandler): Promise<void> {
    handler.assignment(this.files.map((_, i) => i));
    let total = 0;
    for (const [partition, file] of this.files.entries()) {
      let offset = 0;
      let writer: avro.Type | undefined;
      let writerSchema = "";
      const decoder = new avro.streams.BlockDecoder();
      decoder.on("metadata", (type: avro.Type, _codec: string, header: { meta: Record<string, Buffer> }) => {
        writer = type;
        writerSchema = header.meta["avro.schema"]!.toString();
      });
      const input = createReadStream(file);
      input.on("error", (err) => decoder.destroy(err));
      input.pipe(decoder);
      let records: SourceRecord[] = [];
      const flush = async (): Promise<boolean> => {
        if (records.length === 0) return true;
        const batch: RecordBatch = {
          topic: file,
          partition,
          encoding: { kind: "avro-binary", writerSchema },
          records,
        };
        records = [];
        const last = await handler.batch(batch, {
          isStale: () => this.stopping,
          heartbeat: async () => {},
        });
        total += batch.records.length;
        this.onProgress?.(file, total);
        return last === BigInt(batch.records.at(-1)!.offset);
      };
      /** Errors of the task pass through; only the file's own are a ContainerReadError. */
      let handlerFailed = false;
      const deliver = () =>
        flush().catch((err: unknown) => {
          handlerFailed = true;
          throw err;
        });
      try {
        for await (const rec of decoder) {
          records.push({
            topic: file,
            partition,
            offset: String(offset++),
            key: null,
            value: writer!.toBuffer(rec),
          });
          if (records.length >= BATCH_RECORDS && !(await deliver())) return;
        }
        if (!(await deliver())) return;
      } catch (err) {
        if (handlerFailed) throw err;
        if (typeof (err as NodeJS.ErrnoException).code === "string") {
          throw new ContainerReadError(file, `cannot read (${(err as NodeJS.ErrnoException).code})`, {
            cause: err,
          });
        }
        throw new ContainerReadError(
          file,
          `${file} is not a readable snapshot container: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      } finally {
        input.destroy();
        decoder.destroy();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
  }
}
