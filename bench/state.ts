/**
 * Checkpoint cost: `npx tsx bench/state.ts [--quick]`. Builds layers of 1M
 * units whose whole window is full (12 bucket-closing snapshots from two
 * tensor-parallel shards, with abs/sq sums and a few NaN counts, so every
 * array a checkpoint holds is populated), then times per layer:
 * Detector.checkpoint + encodeCheckpoint, decodeCheckpoint, Detector.restore.
 * Bytes are the record values as written; zstd bytes are those values
 * compressed at level 3 (what a zstd producer would ship; Kafka compresses
 * batches, so this is an estimate). Prints one JSON document.
 *
 * Configurations: 1 layer × 1M units without sums, 1 × 1M with sums,
 * 10 layers × 1M with sums (10M tracked units).
 */
import { constants, zstdCompressSync } from "node:zlib";
import { decodeCheckpoint, encodeCheckpoint } from "../src/codec/index.js";
import { Detector } from "../src/core/index.js";
import { build, UNITS } from "./lib/state-layers.js";
import { figure, load1, machine } from "./lib/stats.js";

const quick = process.argv.includes("--quick");
const RUNS = quick ? 1 : 3;

function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function measure(layers: number, sums: boolean) {
  const d = build(layers, sums);
  const encode: number[] = [];
  const decode: number[] = [];
  const restore: number[] = [];
  let bytes = 0;
  let zstd = 0;
  let records = 0;
  let largest = 0;
  for (let run = 0; run < RUNS; run++) {
    const fresh = new Detector();
    let enc = 0;
    let dec = 0;
    let res = 0;
    bytes = 0;
    records = 0;
    for (const { run_id, layer } of d.layerIds()) {
      let out: ReturnType<typeof encodeCheckpoint> = [];
      enc += seconds(() => {
        out = encodeCheckpoint(d.checkpoint(run_id, layer)!, [{ partition: 0, offset: "123456" }]);
      });
      let decoded: ReturnType<typeof decodeCheckpoint> | undefined;
      dec += seconds(() => {
        decoded = decodeCheckpoint(out);
      });
      res += seconds(() => fresh.restore(decoded!.checkpoint));
      for (const r of out) {
        bytes += r.value!.byteLength;
        largest = Math.max(largest, Buffer.byteLength(r.key) + r.value!.byteLength);
        if (run === 0) {
          zstd += zstdCompressSync(r.value!, {
            params: { [constants.ZSTD_c_compressionLevel]: 3 },
          }).byteLength;
        }
      }
      records += out.length;
    }
    encode.push(enc);
    decode.push(dec);
    restore.push(res);
    if (JSON.stringify(fresh.summaries()) !== JSON.stringify(d.summaries())) {
      throw new Error("the restored detector's summaries differ from the original's");
    }
  }
  const units = layers * UNITS;
  return {
    layers,
    units,
    sums,
    state_bytes: d.stateBytes(),
    records,
    largest_record_bytes: largest,
    bytes,
    bytes_per_unit: bytes / units,
    zstd_bytes: zstd,
    zstd_bytes_per_unit: zstd / units,
    encode_s: figure(encode),
    decode_s: figure(decode),
    restore_s: figure(restore),
  };
}

const before = load1();
const results = [measure(1, false), measure(1, true), measure(10, true)];
process.stdout.write(
  `${JSON.stringify({ command: `npx tsx bench/state.ts${quick ? " --quick" : ""}`, machine: machine(), load1: [before, load1()], runs: RUNS, results }, null, 2)}\n`,
);
