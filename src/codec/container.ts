/**
 * Avro object container files (deflate) of ActivationSnapshot records: the
 * replay and recording format. The writer schema travels in the file header,
 * so a file written by an older or newer schema version still reads into the
 * current one.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { deflateRaw } from "node:zlib";
import avro from "avsc";
import type { ActivationSnapshot } from "../core/snapshot.js";
import { CodecError } from "./errors.js";
import type { SnapshotLimits } from "./limits.js";
import { snapshotSchema } from "./schemas.js";
import { defaultSnapshotCodec, snapshotFromAvro, snapshotToAvro } from "./snapshot-codec.js";
import { validateSnapshot } from "./validate.js";

export interface ContainerWriteOptions {
  /** Deflate level 0-9 (zlib's default when omitted). */
  deflateLevel?: number;
  /** Extra file metadata (the `avro.` prefix is reserved). */
  metadata?: Record<string, string>;
}

async function* toAvroRecords(
  snapshots: Iterable<ActivationSnapshot> | AsyncIterable<ActivationSnapshot>,
): AsyncGenerator<unknown> {
  for await (const s of snapshots) yield snapshotToAvro(validateSnapshot(s));
}

/** Writes every snapshot (each validated first) to a new deflate container file at `path`. */
export async function writeSnapshotContainer(
  path: string,
  snapshots: Iterable<ActivationSnapshot> | AsyncIterable<ActivationSnapshot>,
  opts: ContainerWriteOptions = {},
): Promise<void> {
  const level = opts.deflateLevel;
  const encoder = new avro.streams.BlockEncoder(defaultSnapshotCodec.type, {
    codec: "deflate",
    codecs:
      level === undefined
        ? undefined
        : {
            deflate: (buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) =>
              deflateRaw(buf, { level }, cb),
          },
    metadata: Object.fromEntries(Object.entries(opts.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
  } as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
  await pipeline(Readable.from(toAvroRecords(snapshots)), encoder, createWriteStream(path));
}

/**
 * Reads a container file's snapshots in order, each resolved to the current
 * schema and validated. A file that is not a snapshot container, or whose
 * records break the contract, fails with a CodecError.
 */
export async function* readSnapshotContainer(
  path: string,
  limits?: Partial<SnapshotLimits>,
): AsyncGenerator<ActivationSnapshot> {
  const decoder = new avro.streams.BlockDecoder({ readerSchema: snapshotSchema });
  const source = createReadStream(path);
  source.on("error", (err) => decoder.destroy(err));
  source.pipe(decoder);
  try {
    for await (const rec of decoder) {
      yield validateSnapshot(snapshotFromAvro(rec), limits);
    }
  } catch (err) {
    if (err instanceof CodecError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if ((err as NodeJS.ErrnoException).code) throw err;
    throw new CodecError("MALFORMED", `${path} is not a readable snapshot container: ${message}`, undefined, {
      cause: err,
    });
  } finally {
    source.destroy();
    decoder.destroy();
  }
}
