import assert from "node:assert/strict";
import { test } from "node:test";
import { loadTf } from "../../../src/publisher/tf-backend.js";

test("a tfjs backend is chosen, logged, and computes", async () => {
  const messages: string[] = [];
  const { tf, backend, fallbackReason } = await loadTf((m) => messages.push(m));
  assert.ok(backend === "tensorflow" || backend === "cpu");
  assert.equal(tf.getBackend(), backend);
  assert.equal(messages.length, 1);
  assert.match(messages[0]!, new RegExp(`^tfjs backend: ${backend}`));
  if (backend === "cpu") assert.ok(fallbackReason, "the fallback states why the native backend was not used");
  const relu = tf.relu(tf.tensor1d([-1, 0, 2])).dataSync();
  assert.deepEqual(Array.from(relu), [0, 0, 2]);
});
