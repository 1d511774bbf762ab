/**
 * One rank of a multi-rank demo run, in its own child process with its own
 * tfjs engine, as a rank of a distributed job would be. Snapshots and
 * gradients go to the parent (ranks.ts) over the IPC channel; the parent
 * publishes the former and averages the latter over all ranks.
 */
import type { ActivationSnapshot } from "../core/snapshot.js";
import { loadTf } from "../publisher/tf-backend.js";
import { deadUnitsToJson } from "./ground-truth.js";
import { type DemoTrainerOptions, trainDemo } from "./trainer.js";

export type ToParent =
  | { type: "log"; message: string }
  | { type: "snapshot"; snapshot: ActivationSnapshot }
  | { type: "grads"; step: number; grads: Float32Array }
  | { type: "step"; step: number; loss: number }
  | {
      type: "done";
      truth: Record<string, number[]>;
      bornDead: Record<string, number[]>;
      finalLoss: number;
      probes: number;
    }
  | { type: "failed"; name: string; message: string };

export type ToWorker = { type: "averaged"; step: number; grads: Float32Array };

if (!process.send) throw new Error("rank-worker runs only as a child process started by ranks.ts");
const options = JSON.parse(process.argv[2] ?? "") as DemoTrainerOptions;
const send = (m: ToParent): Promise<void> =>
  new Promise((resolve, reject) => process.send!(m, undefined, {}, (err) => (err ? reject(err) : resolve())));

const waiting = new Map<number, (g: Float32Array) => void>();
process.on("message", (m: ToWorker) => {
  const resolve = waiting.get(m.step);
  waiting.delete(m.step);
  resolve?.(m.grads);
});

try {
  await loadTf((message) => void send({ type: "log", message }));
  const result = await trainDemo(options, {
    sink: {
      publish: (snapshot) => send({ type: "snapshot", snapshot }),
    },
    allReduce: (grads, step) =>
      new Promise((resolve) => {
        waiting.set(step, resolve);
        void send({ type: "grads", step, grads });
      }),
    onStep: (step, loss) => void send({ type: "step", step, loss }),
  });
  await send({
    type: "done",
    truth: deadUnitsToJson(result.truth),
    bornDead: deadUnitsToJson(result.bornDead),
    finalLoss: result.finalLoss,
    probes: result.probes,
  });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  await send({ type: "failed", name: e.name, message: e.message });
} finally {
  process.disconnect();
}
