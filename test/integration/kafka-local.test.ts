import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { packageRoot } from "../../src/paths.js";

const run = promisify(execFile);
const script = join(packageRoot, "deploy/kafka-local/kafka.sh");
// A port of its own, so this test never touches the broker other tests share.
const port = 19192;
const env = { ...process.env, KAFKA_PORT: String(port) };
const pidFile = join(packageRoot, ".kafka-local", String(port), "broker.pid");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("kafka.sh up is idempotent and down leaves no broker process behind", { timeout: 300_000 }, async () => {
  const first = await run(script, ["up"], { env });
  assert.equal(first.stdout.trim(), `127.0.0.1:${port}`);
  const pid = Number(readFileSync(pidFile, "utf8"));
  assert.ok(alive(pid));

  const second = await run(script, ["up"], { env });
  assert.equal(second.stdout.trim(), `127.0.0.1:${port}`);
  assert.match(second.stderr, /already running/);
  assert.equal(Number(readFileSync(pidFile, "utf8")), pid, "the second call found the same broker");

  await run(script, ["down"], { env });
  assert.equal(alive(pid), false);
  await assert.rejects(run(script, ["status"], { env }));
});

test("kafka.sh up refuses a port taken by another process, naming it", { timeout: 60_000 }, async () => {
  const { createServer } = await import("node:net");
  const squatter = createServer().listen(port + 10, "127.0.0.1");
  await new Promise((r) => squatter.once("listening", r));
  try {
    await assert.rejects(
      run(script, ["up"], { env: { ...process.env, KAFKA_PORT: String(port + 10) } }),
      (err: { stderr: string }) => {
        assert.match(err.stderr, new RegExp(`port ${port + 10} on 127.0.0.1 is taken by another process`));
        return true;
      },
    );
  } finally {
    squatter.close();
  }
});
