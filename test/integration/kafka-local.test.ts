import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { packageRoot } from "../../src/paths.js";
import { type ChildExitError, runFile, runToExit } from "../support/child.js";
import { freePorts } from "../support/ports.js";

const script = join(packageRoot, "deploy/kafka-local/kafka.sh");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("kafka.sh up is idempotent and down leaves no broker process behind", { timeout: 300_000 }, async () => {
  // Ports of its own, so this test never touches the broker other tests share.
  const [port, controllerPort] = await freePorts(2);
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controllerPort) };
  const stateDir = join(packageRoot, ".kafka-local", String(port));
  const pidFile = join(stateDir, "broker.pid");
  try {
    const first = await runFile(script, ["up"], { env, timeout: 240_000 });
    assert.equal(first.stdout.trim(), `127.0.0.1:${port}`);
    const pid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(alive(pid));

    const second = await runFile(script, ["up"], { env });
    assert.equal(second.stdout.trim(), `127.0.0.1:${port}`);
    assert.match(second.stderr, /already running/);
    assert.equal(Number(readFileSync(pidFile, "utf8")), pid, "the second call found the same broker");

    await runFile(script, ["down"], { env });
    assert.equal(alive(pid), false);
    assert.notEqual((await runToExit(script, ["status"], { env })).status, 0);
  } finally {
    await runToExit(script, ["down"], { env });
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test("kafka.sh up refuses a port taken by another process, naming it", { timeout: 60_000 }, async () => {
  const [port] = await freePorts(1);
  const squatter = createServer().listen(port, "127.0.0.1");
  await new Promise((r) => squatter.once("listening", r));
  try {
    await assert.rejects(
      runFile(script, ["up"], { env: { ...process.env, KAFKA_PORT: String(port) } }),
      (err: ChildExitError) => {
        assert.match(err.stderr, new RegExp(`port ${port} on 127.0.0.1 is taken by another process`));
        return true;
      },
    );
  } finally {
    squatter.close();
    rmSync(join(packageRoot, ".kafka-local", String(port)), { recursive: true, force: true });
  }
});
