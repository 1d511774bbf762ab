/**
 * `reluwatch replay` as a user runs it: a child process on container files
 * written from the simulator, its events and exposition checked against the
 * same snapshots run through a Detector in this process.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { encodeTransition, writeSnapshotContainer } from "../../../src/codec/index.js";
import type { ActivationSnapshot, DetectorConfig, UnitTransition } from "../../../src/core/index.js";
import { packageRoot } from "../../../src/paths.js";
import { cliSync as cli, cliArgs, cli as cliAsync, runSync } from "../../support/child.js";
import { referenceDetector, scenarioSnapshots } from "../../support/fleet.js";
import { parseExposition, sumOf } from "../../support/metrics.js";

const SCHEMA_FIELDS = (
  JSON.parse(readFileSync(join(packageRoot, "schemas/UnitTransition.avsc"), "utf8")) as {
    fields: Array<{ name: string }>;
  }
).fields.map((f) => f.name);

const STATES = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"] as const;

function readEvents(path: string): UnitTransition[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as UnitTransition);
}

/** The replay's oracle: the same snapshots through a Detector here, then the final flush. */
function expected(snapshots: readonly ActivationSnapshot[], config: Partial<DetectorConfig> = {}) {
  const { detector, transitions } = referenceDetector(snapshots, config);
  transitions.push(...detector.flush());
  return { detector, transitions };
}

describe("reluwatch replay", () => {
  let dir: string;
  let snapshots: ActivationSnapshot[];
  let file: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "reluwatch-replay-"));
    // Deaths, a partial revival and a stale rank in 2 layers of 64 units, 3 ranks: every kind of transition.
    snapshots = scenarioSnapshots("revival", {
      seed: 5,
      ranks: 3,
      layers: 2,
      units: 64,
      steps: 1500,
      deaths: [{ layer: 1, fraction: 0.3, step: 300 }],
      revivals: [{ layer: 1, fraction: 0.5, step: 900 }],
      stale_ranks: [{ rank: 2, after_step: 400 }],
    });
    file = join(dir, "fleet.avro");
    await writeSnapshotContainer(file, snapshots);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test("writes one schema-shaped UnitTransition per line and the exposition of the final state", () => {
    const events = join(dir, "events.jsonl");
    const metrics = join(dir, "metrics.prom");
    const r = cli(["replay", file, "--events", events, "--metrics-out", metrics]);
    assert.equal(r.status, 0, r.stderr);
    const ref = expected(snapshots);
    const lines = readFileSync(events, "utf8").split("\n");
    assert.equal(lines.pop(), "", "the file ends with a newline");
    assert.equal(lines.length, ref.transitions.length);
    for (const line of lines) {
      const t = JSON.parse(line) as UnitTransition;
      assert.deepEqual(Object.keys(t), SCHEMA_FIELDS, line);
      encodeTransition(t); // throws when a value does not fit the schema
    }
    assert.deepEqual(readEvents(events), ref.transitions);
    const kinds = new Set(ref.transitions.map((t) => `${t.from}>${t.to}`));
    for (const k of ["UNKNOWN>ACTIVE", "UNKNOWN>MOSTLY_SILENT", "ACTIVE>DEAD", "DEAD>ACTIVE"]) {
      assert.ok(kinds.has(k), `the scenario exercises ${k}; got ${[...kinds].join(", ")}`);
    }
    assert.equal(
      r.stderr,
      `replayed ${snapshots.length} snapshots (ok ${snapshots.length}, duplicate 0, late 0); ${ref.transitions.length} transitions\n`,
      "no progress bar when stderr is not a terminal",
    );

    const samples = parseExposition(readFileSync(metrics, "utf8"));
    const summaries = ref.detector.summaries();
    assert.equal(summaries.length, 2);
    for (const s of summaries) {
      const match = { run: s.run_id, layer: s.layer };
      for (const state of STATES) {
        assert.equal(
          sumOf(samples, "reluwatch_layer_units", { ...match, state: state.toLowerCase() }),
          s.units_by_state[state],
          `${s.layer} ${state}`,
        );
      }
      assert.equal(sumOf(samples, "reluwatch_layer_units", match), 64);
      assert.equal(sumOf(samples, "reluwatch_layer_step", match), s.step);
      assert.equal(sumOf(samples, "reluwatch_layer_stale_ranks", match), 1, "rank 2 went stale");
    }
    assert.ok(summaries.some((s) => s.units_by_state.DEAD > 0));
    assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }), snapshots.length);
    assert.equal(sumOf(samples, "reluwatch_unit_transitions_total"), ref.transitions.length);
  });

  test("detector flags change the verdicts exactly as the same config does in process", () => {
    const events = join(dir, "events-flags.jsonl");
    const r = cli(["replay", file, "--events", events, "--window-steps", "600", "--window-buckets", "3"]);
    assert.equal(r.status, 0, r.stderr);
    const got = readEvents(events);
    assert.deepEqual(got, expected(snapshots, { window_steps: 600, window_buckets: 3 }).transitions);
    assert.notDeepEqual(got, expected(snapshots).transitions, "the flags made a difference");
    // Bucket closes every 200 steps: the first verdicts come at the last snapshot before one.
    assert.equal(got[0]!.step % 200, 150);

    const config = join(dir, "detector.yaml");
    writeFileSync(config, "alpha: 0.01\ndead_rate: 0.002\n");
    const c = cli(["replay", file, "--events", events, "--config", config]);
    assert.equal(c.status, 0, c.stderr);
    assert.deepEqual(readEvents(events), expected(snapshots, { alpha: 0.01, dead_rate: 0.002 }).transitions);
  });

  test("a bad detector flag exits 2 with one line naming it", async () => {
    const cases = [
      [["--window-buckets", "7"], "--window-buckets"],
      [["--alpha", "1.5"], "--alpha"],
      [["--dead-rate", "0.05"], "--silent-rate"],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => cliAsync(["replay", file, ...args])));
    for (const [i, [args, flag]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`^reluwatch: invalid setting ${flag}: `));
    }
  });

  test("several files replay as one stream, in the order given", async () => {
    const early = join(dir, "early.avro");
    const late = join(dir, "late.avro");
    await writeSnapshotContainer(
      early,
      snapshots.filter((s) => s.step < 700),
    );
    await writeSnapshotContainer(
      late,
      snapshots.filter((s) => s.step >= 700),
    );
    const events = join(dir, "events-split.jsonl");
    const r = cli(["replay", early, late, "--events", events]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readEvents(events), expected(snapshots).transitions);
  });

  test("files it cannot replay fail with one line naming the file", async () => {
    const garbage = join(dir, "garbage.avro");
    writeFileSync(garbage, "not a container\n");
    const [r, missing, noDir] = await Promise.all([
      cliAsync(["replay", file, garbage]),
      cliAsync(["replay", join(dir, "missing.avro")]),
      cliAsync(["replay", file, "--events", join(dir, "no", "such", "dir.jsonl")]),
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^reluwatch: replay: .*${garbage}.*not a readable snapshot container`));
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^reluwatch: cannot read .*missing\.avro \(ENOENT\)\n$/);
    assert.equal(noDir.status, 2);
    assert.match(noDir.stderr, /^reluwatch: --events: cannot write .*dir\.jsonl \(ENOENT\)\n$/);
  });

  test("the consumer's limits and the on_invalid policy apply: fail by default, skip on request, no dead letters", async () => {
    const [failed, skipped, deadLetter] = await Promise.all([
      cliAsync(["replay", file, "--max-units-per-layer", "32"]),
      cliAsync(["replay", file, "--max-units-per-layer", "32", "--on-invalid", "skip"]),
      cliAsync(["replay", file, "--on-invalid", "dead_letter"]),
    ]);
    assert.equal(failed.status, 1, failed.stderr);
    assert.match(
      failed.stderr,
      /^reluwatch: replay: .*fleet\.avro: snapshot 0: .*max_units_per_layer is 32\n$/,
    );
    assert.equal(skipped.status, 0, skipped.stderr);
    assert.match(
      skipped.stderr,
      new RegExp(
        `replayed ${snapshots.length} snapshots \\(ok 0, duplicate 0, late 0, over_limit ${snapshots.length}\\); 0 transitions`,
      ),
    );
    assert.equal(deadLetter.status, 2);
    assert.match(
      deadLetter.stderr,
      /^reluwatch: invalid setting on_invalid: replay has no dead-letter topic/,
    );
  });

  test("--serve keeps the replayed state up for the explorer and the API until interrupted", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "replay", file, "--serve", "0"],
      {
        cwd: packageRoot,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const exited = once(child, "exit");
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      let stderr = "";
      const base = await new Promise<string>((resolve, reject) => {
        child.stderr!.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          const m = /explorer at (http:\/\/127\.0\.0\.1:\d+)\/ui\//.exec(stderr);
          if (m) resolve(m[1]!);
        });
        exited.then(() => reject(new Error(`replay exited before serving:\n${stderr}`)));
      });
      const ref = expected(snapshots);
      const { runs } = (await (await fetch(`${base}/api/runs`)).json()) as { runs: Array<{ dead: number }> };
      assert.equal(
        runs[0]!.dead,
        ref.detector.summaries().reduce((n, l) => n + l.units_by_state.DEAD, 0),
      );
      const page = await fetch(`${base}/ui/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      child.kill("SIGINT");
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
    }
  });

  test("draws a progress bar on a terminal", () => {
    // script(1) gives the child a pseudo-terminal, so its stderr is a TTY.
    const command = [process.execPath, ...cliArgs(["replay", file])]
      .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
      .join(" ");
    const r = runSync("script", ["-qefc", command, "/dev/null"], { cwd: packageRoot });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /replay \[[=-]+\] 1\/1 files \| \d+ snapshots/);
    assert.match(r.stdout, new RegExp(`replayed ${snapshots.length} snapshots`));
  });
});
