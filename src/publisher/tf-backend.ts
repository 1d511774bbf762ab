/**
 * Picks the TensorFlow.js backend once per process, fastest first:
 *
 * 1. tensorflow: @tensorflow/tfjs-node, the native libtensorflow binding. It is
 *    an optional dependency because its install step downloads libtensorflow,
 *    which fails on machines without access to that host; npm then skips it.
 * 2. wasm: @tensorflow/tfjs-backend-wasm, whose .wasm binaries ship inside the
 *    npm package, so it works offline. It runs the demo MLP and the probe several
 *    times faster than pure JS (bench/probe.ts measures both, `make bench`).
 * 3. cpu: the pure-JS backend of @tensorflow/tfjs, which runs anywhere.
 *
 * RELUWATCH_TF_BACKEND=tensorflow|wasm|cpu forces one; a forced backend that
 * cannot load is an error rather than a silent fallback.
 */
import type * as TfModule from "@tensorflow/tfjs";

export const TF_BACKENDS = ["tensorflow", "wasm", "cpu"] as const;
export type TfBackendName = (typeof TF_BACKENDS)[number];

export interface LoadedTf {
  tf: typeof TfModule;
  backend: TfBackendName;
  /** Why a faster backend was not used, when one was not. */
  fallbackReason?: string;
}

export class TfBackendError extends Error {
  override name = "TfBackendError";
}

let loading: Promise<LoadedTf> | undefined;

export function loadTf(log: (msg: string) => void = () => {}): Promise<LoadedTf> {
  loading ??= pick(log, forcedBackend());
  return loading;
}

function forcedBackend(): TfBackendName | undefined {
  const raw = process.env.RELUWATCH_TF_BACKEND;
  if (raw === undefined || raw === "") return undefined;
  if ((TF_BACKENDS as readonly string[]).includes(raw)) return raw as TfBackendName;
  throw new TfBackendError(`RELUWATCH_TF_BACKEND=${raw} is not one of ${TF_BACKENDS.join(", ")}`);
}

const DESCRIPTIONS: Record<TfBackendName, string> = {
  tensorflow: "native @tensorflow/tfjs-node",
  wasm: "WebAssembly @tensorflow/tfjs-backend-wasm",
  cpu: "pure JS",
};

async function activate(name: TfBackendName): Promise<typeof TfModule> {
  if (name === "tensorflow") {
    const native = (await import("@tensorflow/tfjs-node" as string)) as typeof TfModule;
    if (!(await native.setBackend("tensorflow"))) throw new Error("setBackend('tensorflow') failed");
    await native.ready();
    return native;
  }
  const tf = await import("@tensorflow/tfjs");
  // Registers the "wasm" backend with the shared tfjs-core engine as a side effect.
  if (name === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend(name))) throw new Error(`setBackend('${name}') failed`);
  await tf.ready();
  return tf;
}

function firstLine(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

async function pick(log: (msg: string) => void, forced: TfBackendName | undefined): Promise<LoadedTf> {
  if (forced !== undefined) {
    try {
      const tf = await activate(forced);
      log(`tfjs backend: ${forced} (${DESCRIPTIONS[forced]}; RELUWATCH_TF_BACKEND=${forced})`);
      return forced === "tensorflow"
        ? { tf, backend: forced }
        : { tf, backend: forced, fallbackReason: `RELUWATCH_TF_BACKEND=${forced}` };
    } catch (err) {
      throw new TfBackendError(`RELUWATCH_TF_BACKEND=${forced} but it did not load: ${firstLine(err)}`);
    }
  }
  const skipped: string[] = [];
  for (const name of TF_BACKENDS) {
    try {
      const tf = await activate(name);
      const why = skipped.join("; ");
      log(`tfjs backend: ${name} (${DESCRIPTIONS[name]}${why ? `; ${why}` : ""})`);
      return why ? { tf, backend: name, fallbackReason: why } : { tf, backend: name };
    } catch (err) {
      skipped.push(`${DESCRIPTIONS[name]} unavailable: ${firstLine(err)}`);
    }
  }
  throw new TfBackendError(`no TensorFlow.js backend loaded: ${skipped.join("; ")}`);
}
