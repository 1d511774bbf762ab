import { createWriteStream, type WriteStream } from "node:fs";
import type { ActivationSnapshot } from "../core/snapshot.js";
import type { SnapshotSink } from "./probe.js";

/**
 * Writes snapshots as JSON lines, typed arrays as plain number arrays, so a
 * run can be inspected or replayed without a broker.
 */
export class JsonLinesSnapshotSink implements SnapshotSink {
  private readonly out: WriteStream;

  constructor(path: string) {
    this.out = createWriteStream(path, { flags: "w" });
  }

  publish(snapshot: ActivationSnapshot): Promise<void> {
    const line = `${JSON.stringify(snapshotToJson(snapshot))}\n`;
    return new Promise((resolve, reject) => {
      this.out.write(line, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.once("error", reject);
      this.out.end(() => resolve());
    });
  }
}

export function snapshotToJson(s: ActivationSnapshot): unknown {
  const stats =
    s.stats.kind === "counts"
      ? {
          kind: "counts",
          fires: Array.from(s.stats.fires),
          abs_sum: s.stats.abs_sum ? Array.from(s.stats.abs_sum) : null,
          sq_sum: s.stats.sq_sum ? Array.from(s.stats.sq_sum) : null,
          nonfinite: s.stats.nonfinite ? Array.from(s.stats.nonfinite) : null,
        }
      : { kind: "raw", dtype: s.stats.dtype, values: Buffer.from(s.stats.values).toString("base64") };
  return { ...s, stats };
}
