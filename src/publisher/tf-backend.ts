/**
 * Picks the TensorFlow.js backend once per process.
 *
 * @tensorflow/tfjs-node is an optional dependency: its install step downloads
 * libtensorflow, which fails on machines without access to that host, and npm
 * then skips it. When it is missing or its native binding does not load, the
 * pure-JS CPU backend of @tensorflow/tfjs runs the same code, only slower.
 */
import type * as TfModule from "@tensorflow/tfjs";

export type TfBackendName = "tensorflow" | "cpu";

export interface LoadedTf {
  tf: typeof TfModule;
  backend: TfBackendName;
  /** Why the native backend was not used, when it was not. */
  fallbackReason?: string;
}

let loading: Promise<LoadedTf> | undefined;

export function loadTf(log: (msg: string) => void = () => {}): Promise<LoadedTf> {
  loading ??= pick(log);
  return loading;
}

async function pick(log: (msg: string) => void): Promise<LoadedTf> {
  if (process.env.RELUWATCH_TF_BACKEND !== "cpu") {
    try {
      const native = (await import("@tensorflow/tfjs-node" as string)) as typeof TfModule;
      await native.setBackend("tensorflow");
      await native.ready();
      log("tfjs backend: tensorflow (native @tensorflow/tfjs-node)");
      return { tf: native, backend: "tensorflow" };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split("\n")[0]! : String(err);
      const tf = await import("@tensorflow/tfjs");
      await tf.setBackend("cpu");
      await tf.ready();
      log(`tfjs backend: cpu (pure JS; @tensorflow/tfjs-node unavailable: ${reason})`);
      return { tf, backend: "cpu", fallbackReason: reason };
    }
  }
  const tf = await import("@tensorflow/tfjs");
  await tf.setBackend("cpu");
  await tf.ready();
  log("tfjs backend: cpu (RELUWATCH_TF_BACKEND=cpu)");
  return { tf, backend: "cpu", fallbackReason: "RELUWATCH_TF_BACKEND=cpu" };
}
