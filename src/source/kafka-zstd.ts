/**
 * zstd for kafkajs record batches, from Node.js's own zlib (Node >= 22.15 has
 * zstd built in): no native addon to build, nothing to download at install.
 *
 * kafkajs ships gzip only and looks every other codec up in its mutable
 * CompressionCodecs table, so registering here once per process lets the
 * publisher write zstd batches and every kafkajs consumer read them.
 * @platformatic/kafka reads and writes zstd by itself.
 */
import { promisify } from "node:util";
import zlib from "node:zlib";
import kafkajs from "kafkajs";

// kafkajs is CommonJS and not every export is visible to ESM named imports.
const { CompressionCodecs, CompressionTypes } = kafkajs;

/**
 * Level 3 is zstd's own default: on activation snapshots (mostly small
 * integers in u32 fields) higher levels cost CPU on the trainer for little gain;
 * `make bench`'s compression round measures it.
 */
export const ZSTD_LEVEL = 3;

/** True when this Node.js has zstd in zlib. */
export function zstdAvailable(): boolean {
  return typeof zlib.zstdCompress === "function" && typeof zlib.zstdDecompress === "function";
}

let registered = false;

/**
 * Makes kafkajs able to compress and decompress zstd batches. Idempotent. On a
 * Node.js without zstd it registers nothing and returns false, so consumers
 * still read every other codec; a publisher asked for zstd then refuses it.
 */
export function registerZstdCodec(): boolean {
  if (registered) return true;
  if (!zstdAvailable()) return false;
  const compress = promisify(zlib.zstdCompress);
  const decompress = promisify(zlib.zstdDecompress);
  const params = { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL };
  const codec = {
    compress: (encoder: { buffer: Buffer }) => compress(encoder.buffer, { params }),
    decompress: (buffer: Buffer) => decompress(buffer),
  };
  (CompressionCodecs as Record<number, () => typeof codec>)[CompressionTypes.ZSTD] = () => codec;
  registered = true;
  return true;
}
