/**
 * Runs the demo trainer as N data-parallel ranks.
 *
 * Each rank is a child process running trainDemo on its own shard, with the
 * shared seed, so all start from the same weights. Every step each rank sends
 * its gradient here; the average goes back to all of them (a synchronous
 * all-reduce), so the ranks keep identical weights, as real data-parallel
 * training does, and publish the same layer names under their own rank.
 * Snapshots from all ranks are published through one sink, in arrival order.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PROCESS_START_MS } from "../publisher/activation-probe.js";
import type { SnapshotSink } from "../publisher/probe.js";
import type { DeadUnits } from "./ground-truth.js";
import type { ToParent, ToWorker } from "./rank-worker.js";
import { type DemoTrainerOptions, resolveTrainerOptions, type TrainResult, trainDemo } from "./trainer.js";

export class RankFailedError extends Error {
  override name = "RankFailedError";
}

export interface DemoRunDeps {
  sink: SnapshotSink;
  log?: (message: string) => void;
  onStep?: (rank: number, step: number, loss: number) => void;
}

export interface DemoRunResult extends TrainResult {
  /** Whether every rank ended with the same ground truth (identical weights). */
  ranksAgree: boolean;
}

function fromJson(json: Record<string, number[]>): DeadUnits {
  return new Map(Object.entries(json).map(([layer, units]) => [layer, new Set(units)]));
}

function workerPath(): string {
  // Under tsx this module is .ts, after a build .js; the worker sits beside it either way,
  // and fork passes on this process's loader flags (tsx's among them).
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`./rank-worker${ext}`, import.meta.url));
}

/** Trains `ranks` ranks (in-process when there is one) and returns the ground truth. */
export async function runDemo(
  partial: Partial<DemoTrainerOptions>,
  deps: DemoRunDeps,
): Promise<DemoRunResult> {
  const o = resolveTrainerOptions({ ...partial, rank: 0 });
  if (o.ranks === 1) {
    const result = await trainDemo(o, { sink: deps.sink, onStep: (s, l) => deps.onStep?.(0, s, l) });
    return { ...result, ranksAgree: true };
  }
  return runWorkers(o, deps);
}

function runWorkers(o: DemoTrainerOptions, deps: DemoRunDeps): Promise<DemoRunResult> {
  const n = o.ranks;
  const workers: ChildProcess[] = [];
  const sums = new Map<number, { sum: Float32Array; count: number }>();
  const done: (Extract<ToParent, { type: "done" }> | undefined)[] = new Array(n).fill(undefined);
  let publishing: Promise<void> = Promise.resolve();

  return new Promise<DemoRunResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      for (const w of workers) if (w.exitCode === null) w.kill();
      reject(err);
    };
    const finish = async () => {
      try {
        await publishing;
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const results = done as Extract<ToParent, { type: "done" }>[];
      const first = JSON.stringify(results[0]!.truth);
      settled = true;
      resolve({
        options: o,
        truth: fromJson(results[0]!.truth),
        bornDead: fromJson(results[0]!.bornDead),
        finalLoss: results.reduce((a, r) => a + r.finalLoss, 0) / n,
        probes: results.reduce((a, r) => a + r.probes, 0),
        ranksAgree: results.every((r) => JSON.stringify(r.truth) === first),
      });
    };

    for (let rank = 0; rank < n; rank++) {
      // "advanced" serialization carries typed arrays (gradients, fire counts) as such.
      // One job, one incarnation: the children's own start times differ and would read as restarts.
      const options = { ...o, rank, incarnation: o.incarnation ?? PROCESS_START_MS };
      const w = fork(workerPath(), [JSON.stringify(options)], { serialization: "advanced" });
      workers.push(w);
      w.on("message", (m: ToParent) => {
        switch (m.type) {
          case "log":
            if (rank === 0) deps.log?.(m.message);
            break;
          case "snapshot":
            publishing = publishing.then(() => deps.sink.publish(m.snapshot));
            publishing.catch(fail);
            break;
          case "step":
            deps.onStep?.(rank, m.step, m.loss);
            break;
          case "grads": {
            const entry = sums.get(m.step);
            if (!entry) sums.set(m.step, { sum: Float32Array.from(m.grads), count: 1 });
            else {
              for (let i = 0; i < m.grads.length; i++) entry.sum[i]! += m.grads[i]!;
              entry.count++;
            }
            const e = sums.get(m.step)!;
            if (e.count === n) {
              sums.delete(m.step);
              for (let i = 0; i < e.sum.length; i++) e.sum[i]! /= n;
              for (const other of workers) {
                const msg: ToWorker = { type: "averaged", step: m.step, grads: e.sum };
                other.send(msg);
              }
            }
            break;
          }
          case "done":
            done[rank] = m;
            if (done.every((d) => d !== undefined)) void finish();
            break;
          case "failed":
            fail(new RankFailedError(`rank ${rank}: ${m.name}: ${m.message}`));
            break;
        }
      });
      w.on("error", (err) => fail(new RankFailedError(`rank ${rank}: ${err.message}`)));
      w.on("exit", (code) => {
        if (done[rank] === undefined)
          fail(new RankFailedError(`rank ${rank} exited with code ${code} before finishing`));
      });
    }
  });
}
