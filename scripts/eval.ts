/**
 * Detection-quality evaluation (`make eval`): each scenario goes through the
 * CLI exactly as a user would run it, `reluwatch simulate --out --truth` then
 * `reluwatch replay --events`, and the events are scored against the truth
 * (src/eval/score.ts). Prints a Markdown table, writes it with the JSON to
 * docs/evaluation.md, and exits 1 when any scenario misses a target.
 *
 *   npx tsx scripts/eval.ts [--scenario NAME]... [--doc FILE] [--jobs N]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { resolveDetectorConfig, type UnitTransition } from "../src/core/index.js";
import { EVAL_TARGETS, type ScenarioScore, scoreScenario } from "../src/eval/score.js";
import { packageRoot } from "../src/paths.js";
import type { FleetTruth } from "../src/sim/index.js";

interface EvalScenario {
  /** Row label; the fleet's built-in scenario is the first simulate flag. */
  label: string;
  simulate: string[];
}

/**
 * The built-in scenarios at their defaults (4 ranks, 3 layers of 256 units,
 * 2000 steps), plus one fleet of realistic shape: 8 ranks, 6 layers of 2048
 * units, 6000 steps, with born-dead units, mostly-silent units down to
 * dead_rate, a death that falls mid-bucket, a later death, a partial revival
 * and a rank that goes stale. The traffic of real jobs has its own
 * scenarios: gradient accumulation, a crash and resume, NaN units, NaN sums.
 */
const EVAL_SCENARIOS: readonly EvalScenario[] = [
  { label: "healthy", simulate: ["--scenario", "healthy"] },
  { label: "lr-spike", simulate: ["--scenario", "lr-spike"] },
  { label: "born-dead", simulate: ["--scenario", "born-dead"] },
  { label: "stale-rank", simulate: ["--scenario", "stale-rank"] },
  { label: "revival", simulate: ["--scenario", "revival"] },
  { label: "tensor-parallel", simulate: ["--scenario", "tensor-parallel"] },
  { label: "grad-accum", simulate: ["--scenario", "grad-accum"] },
  { label: "crash-resume", simulate: ["--scenario", "crash-resume"] },
  { label: "nan-units", simulate: ["--scenario", "nan-units"] },
  { label: "nan-sums", simulate: ["--scenario", "nan-sums"] },
  {
    label: "fleet-8x6x2048",
    simulate: [
      ...["--scenario", "lr-spike", "--seed", "17"],
      ...["--ranks", "8", "--layers", "6", "--units", "2048", "--steps", "6000"],
      ...["--born-dead", "0.01", "--silent-fraction", "0.2"],
      ...["--death", "2:0.3@1530", "--death", "4:0.1@3000", "--death", "5:0.05@4480"],
      ...["--revive", "2:0.3@4800", "--stale-rank", "7@5000"],
    ],
  },
];

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: packageRoot,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`reluwatch ${args.join(" ")} exited ${code}:\n${stderr}`));
    });
  });
}

async function evaluate(sc: EvalScenario, dir: string): Promise<ScenarioScore> {
  const out = join(dir, `${sc.label}.avro`);
  const truthFile = join(dir, `${sc.label}.truth.json`);
  const events = join(dir, `${sc.label}.events.jsonl`);
  await run(["simulate", ...sc.simulate, "--out", out, "--truth", truthFile]);
  await run(["replay", out, "--events", events]);
  const truth = JSON.parse(readFileSync(truthFile, "utf8")) as FleetTruth;
  const transitions = readFileSync(events, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as UnitTransition);
  rmSync(out);
  const score = scoreScenario(truth, transitions, resolveDetectorConfig());
  return { ...score, scenario: sc.label };
}

/** Runs `jobs` scenarios at a time, keeping the results in scenario order. */
async function evaluateAll(list: readonly EvalScenario[], dir: string, jobs: number) {
  const results = new Array<ScenarioScore>(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      const started = Date.now();
      results[i] = await evaluate(list[i]!, dir);
      process.stderr.write(
        `eval: ${list[i]!.label} scored in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, worker));
  return results;
}

const num = (x: number | null, digits = 4) => (x === null ? "—" : x.toFixed(digits));
const steps = (x: number | null) => (x === null ? "—" : Number.isFinite(x) ? String(x) : "∞");

function markdownTable(scores: readonly ScenarioScore[]): string {
  const head =
    "| scenario | units | truly dead | DEAD at end | precision | recall | DEAD at end in gray zone | revived, still DEAD | precision, gray zone wrong | units ≥ 3×dead_rate | false dead (≥ 3×) | false dead (< 3×) | deaths scored | median delay | p95 delay | max delay | p95 bound | replaced-timeline DEAD at end | NaN units (called dead) | pass |";
  const rule = `|${" --- |".repeat(20)}`;
  const rows = scores.map((s) =>
    [
      s.scenario,
      s.units,
      s.truly_dead,
      s.dead_verdicts,
      num(s.precision),
      num(s.recall),
      s.dead_in_gray_zone,
      s.revived_still_dead,
      num(s.precision_strict),
      s.lively_units,
      s.false_dead,
      s.false_dead_sparse,
      s.deaths - s.undetected === s.deaths ? s.deaths : `${s.deaths} (${s.undetected} missed)`,
      steps(s.delay_median),
      steps(s.delay_p95),
      steps(s.delay_max),
      `${s.bound.steps} (${s.bound.n_min_steps} + ${s.bound.bucket_steps})`,
      s.replaced_dead_at_end,
      `${s.nan_units} (${s.nan_dead})`,
      s.failures.length === 0 ? "yes" : `**no**: ${s.failures.join("; ")}`,
    ].join(" | "),
  );
  return [head, rule, ...rows.map((r) => `| ${r} |`)].join("\n");
}

function document(table: string, scores: readonly ScenarioScore[], command: string): string {
  const t = EVAL_TARGETS;
  return `# Detection quality

Produced by \`${command}\` (\`make eval\`). Every scenario is run through the
CLI: \`reluwatch simulate … --out FILE --truth TRUTH\`, then
\`reluwatch replay FILE --events EVENTS\` at default detector settings
(α = dead_rate = 0.001, so a verdict needs n_min = 6905 silent samples;
window 1000 steps in 10 buckets). \`scripts/eval.ts\` scores the events against
the truth with \`src/eval/score.ts\`; \`test/unit/eval/quality.test.ts\` holds
two small seeded scenarios to the same targets in \`make test\`.

## Targets

- **precision** >= ${t.precision} and **recall** >= ${t.recall} of DEAD at the end of
  each scenario: "truly dead" is a unit whose true rate at the last snapshot
  step is 0; a verdict is the unit's state after the replay's final flush.
  Precision counts a DEAD unit as wrong when its true rate is >= ${t.lively_multiple} × dead_rate.
  A DEAD unit whose true rate is above 0 but below that is in the *gray zone*:
  the verdict claims "rate < dead_rate with confidence 1 − α" and is wrong on
  at most α of the verdict opportunities of a unit at dead_rate, so a fleet
  with hundreds of units just above dead_rate and a verdict at every bucket
  close will hold a few such units at any time, however many units are truly
  dead. They are listed ("DEAD at end in gray zone") with the precision that
  counts them as wrong ("precision, gray zone wrong"), which is not a target.
  "revived, still DEAD" counts the units the truth revived that are DEAD at
  the end (at any rate; the lively ones among them are also false positives).
- **no false dead verdict** for units whose true rate is >= ${t.lively_multiple} × dead_rate: any
  transition to DEAD at a step where the unit's true rate was at least that,
  mostly-silent units included. Dead verdicts for units below that (the
  sparsest mostly-silent units, down to dead_rate) are listed as "false dead
  (< 3×)": the verdict's 99.9 % confidence allows them at a rate of α per
  verdict opportunity.
- **p95 detection delay** <= the steps needed to collect n_min samples plus one
  bucket. The delay is the step of the first transition to DEAD at or after the
  true death step, minus the death step (born-dead units die at step 0). A
  death counts when the unit stays dead at least as long as the bound; one it
  is never detected is an infinite delay. Samples per step are
  ranks × micro-batches × samples / interval, with the fewest ranks that
  publish at any step (a stale rank lengthens the bound); tensor-parallel
  shards do not add.
- **no replaced-timeline death at the end** (${t.replaced_dead_at_end}): after a crash and a resume
  from an earlier checkpoint, units that died only on the replaced timeline
  must not be DEAD at the end. Transitions stamped before the resume at steps
  the new incarnation published again belong to the replaced timeline: their
  dead verdicts are checked against that timeline's rates (for "false dead"),
  and they take no part in the delays.
- **no NaN unit called dead** (${t.nan_dead}): units whose every activation is NaN
  from some step on get no dead verdict from then on.

## Results

${table}

## Scenarios

${EVAL_SCENARIOS.map((s) => `- **${s.label}**: \`reluwatch simulate ${s.simulate.join(" ")}\``).join("\n")}

## JSON

\`\`\`json
${JSON.stringify(scores, null, 2)}
\`\`\`
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: "string", multiple: true },
      doc: { type: "string", default: "docs/evaluation.md" },
      jobs: { type: "string", default: "2" },
    },
  });
  const chosen = values.scenario ?? EVAL_SCENARIOS.map((s) => s.label);
  const unknown = chosen.filter((c) => !EVAL_SCENARIOS.some((s) => s.label === c));
  if (unknown.length > 0) {
    process.stderr.write(
      `eval: unknown scenario ${unknown.join(", ")}; known: ${EVAL_SCENARIOS.map((s) => s.label).join(", ")}\n`,
    );
    process.exit(2);
  }
  const jobs = Number(values.jobs);
  if (!Number.isSafeInteger(jobs) || jobs < 1) {
    process.stderr.write(`eval: --jobs must be an integer >= 1, got ${values.jobs}\n`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-eval-"));
  let scores: ScenarioScore[];
  try {
    scores = await evaluateAll(
      EVAL_SCENARIOS.filter((s) => chosen.includes(s.label)),
      dir,
      jobs,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const table = markdownTable(scores);
  process.stdout.write(`${table}\n`);
  const command = ["npx tsx scripts/eval.ts", ...process.argv.slice(2)].join(" ");
  writeFileSync(resolve(packageRoot, values.doc), document(table, scores, command));
  process.stderr.write(`eval: wrote ${values.doc}\n`);
  const failed = scores.filter((s) => s.failures.length > 0);
  if (failed.length > 0) {
    for (const s of failed) process.stderr.write(`eval: ${s.scenario} missed: ${s.failures.join("; ")}\n`);
    process.exit(1);
  }
}

await main();
