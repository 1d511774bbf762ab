/**
 * `reluwatch demo --ci` against the real broker, as `make demo ARGS=--ci` runs
 * it: topics, the consumer service, a 2-rank trainer publishing through Kafka,
 * the transition events read back and printed, the summary, the exit code.
 * Smaller than the default run (2 × 32 units, 300 steps) but the same path.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { getBroker, kafkaClient, type TestBroker } from "../support/broker.js";
import { cli } from "../support/child.js";

let broker: TestBroker;
before(async () => {
  broker = await getBroker();
});

async function demo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await cli(
    [
      ...["demo", "--ci"],
      ...["--brokers", broker.brokers.join(","), "--metrics-host", "127.0.0.1", "--metrics-port", "0"],
      ...args,
    ],
    { timeout: 300_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("demo --ci: deaths printed as they are detected, a summary, exit 0, its own topics removed", async () => {
  const r = await demo([
    ...["--layers", "2", "--units", "32", "--steps", "300", "--every-steps", "10", "--probe-batch", "256"],
    ...["--lr-spike-step", "100", "--lr-spike-factor", "1000", "--dataset-size", "1024", "--seed", "1"],
    ...["--window-steps", "200", "--run-id", "e2e-demo"],
  ]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^ {2}unit explorer http:\/\/127\.0\.0\.1:\d+\/ui\/run\?run=e2e-demo$/m);
  // The default events setting (deaths) keeps first verdicts of living units off the events topic.
  assert.doesNotMatch(r.stdout, /first verdicts/);
  const deaths = [
    ...r.stdout.matchAll(
      /^step +(\d+) {2}(dense_\d): (\d+) units? died \((.+)\); (\d+)\/32 dead, confidence 99\.9%$/gm,
    ),
  ];
  assert.ok(deaths.length >= 1, r.stdout);
  assert.ok(
    deaths.every((m) => Number(m[1]) > 100),
    "deaths are detected after the spike, not before",
  );
  assert.match(
    r.stdout,
    /^layer +units +active +mostly-silent +dead +unknown +deaths +born dead +truly dead$/m,
  );
  const rows = [...r.stdout.matchAll(/^(dense_\d) +32 +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$/gm)];
  assert.deepEqual(
    rows.map((m) => m[1]),
    ["dense_0", "dense_1"],
  );
  for (const m of rows) {
    const [active, silent, dead, unknown] = m.slice(2, 6).map(Number);
    assert.equal(active! + silent! + dead! + unknown!, 32, `${m[1]}: the states add up to the layer`);
  }
  const printedDeaths = deaths.reduce((a, m) => a + Number(m[3]), 0);
  const tableDeaths = rows.reduce((a, m) => a + Number(m[6]), 0);
  assert.equal(printedDeaths, tableDeaths, "every death counted by the detector was printed");

  const admin = kafkaClient(broker).admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    const id = /reluwatch\.demo\.([0-9a-f]+)\.snapshots/.exec(r.stdout)?.[1];
    assert.ok(id, "the printout names the run's topics");
    assert.ok(!topics.includes(`reluwatch.demo.${id}.snapshots`), "the demo deletes the topics it made");
  } finally {
    await admin.disconnect();
  }
});

test("demo --ci exits 1 when no unit died", async () => {
  const r = await demo([
    ...["--layers", "1", "--units", "8", "--steps", "20", "--every-steps", "10", "--probe-batch", "64"],
    ...["--lr-spike-step", "none", "--dataset-size", "256"],
  ]);
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^no unit death was detected$/m);
  assert.match(r.stdout, /^total +8 /m);
});
