import assert from "node:assert/strict";
import { test } from "node:test";
import { packageRoot } from "../../../src/paths.js";
import { loadTf } from "../../../src/publisher/tf-backend.js";
import { runSync } from "../../support/child.js";

const script = `
import { loadTf } from "./src/publisher/tf-backend.ts";
try {
  const { tf, backend } = await loadTf((m) => console.log(m));
  console.log(JSON.stringify({ backend, active: tf.getBackend(), relu: Array.from(tf.relu(tf.tensor1d([-1, 3])).dataSync()) }));
} catch (err) { console.log(JSON.stringify({ error: err.name, message: err.message })); }
`;

/** loadTf caches its choice per process, so each forced choice runs in a fresh one. */
function loadIn(env: Record<string, string>): { log: string; result: Record<string, unknown> } {
  const r = runSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  return { log: lines.slice(0, -1).join("\n"), result: JSON.parse(lines.at(-1)!) };
}

test("a tfjs backend is chosen, logged once, and computes", async () => {
  const messages: string[] = [];
  const { tf, backend, fallbackReason } = await loadTf((m) => messages.push(m));
  assert.ok(backend === "tensorflow" || backend === "wasm", `got ${backend}`);
  assert.equal(tf.getBackend(), backend);
  assert.equal(messages.length, 1);
  assert.match(messages[0]!, new RegExp(`^tfjs backend: ${backend}`));
  // The wasm binaries ship inside the npm package, so without tfjs-node the next choice is wasm, never cpu.
  if (backend === "wasm") assert.match(fallbackReason ?? "", /tfjs-node unavailable/);
  const relu = tf.relu(tf.tensor1d([-1, 0, 2])).dataSync();
  assert.deepEqual(Array.from(relu), [0, 0, 2]);
});

test("RELUWATCH_TF_BACKEND forces cpu or wasm", () => {
  for (const name of ["cpu", "wasm"]) {
    const { log, result } = loadIn({ RELUWATCH_TF_BACKEND: name });
    assert.deepEqual(result, { backend: name, active: name, relu: [0, 3] });
    assert.match(log, new RegExp(`^tfjs backend: ${name} .*RELUWATCH_TF_BACKEND=${name}`));
  }
});

test("an unknown RELUWATCH_TF_BACKEND is a typed error", () => {
  const { result } = loadIn({ RELUWATCH_TF_BACKEND: "webgl" });
  assert.equal(result.error, "TfBackendError");
  assert.match(String(result.message), /not one of tensorflow, wasm, cpu/);
});
