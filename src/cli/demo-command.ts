import { randomUUID } from "node:crypto";
import { type Command, Option } from "commander";
import { addOptionFlags, CONSUME_GROUPS, envOf, loadSettingsOrExit, OPTION_SPECS } from "../config/index.js";
import type { Settings } from "../config/load.js";
import { runLiveDemo, runTrainerOnly } from "../demo/live-demo.js";
import { DEFAULT_TRAINER_OPTIONS as D, type DemoTrainerOptions } from "../demo/trainer.js";
import { createLogger } from "../log.js";
import { int, num, share, stepOrNone } from "./arg-parsers.js";
import { exitOnFatal, fatalLine } from "./fatal.js";

const GROUPS = CONSUME_GROUPS;

/** The demo's own flags; the Kafka, service and detector ones come from addOptionFlags. */
interface DemoFlags {
  ci?: boolean;
  trainerOnly?: boolean;
  keepTopics?: boolean;
  layers: number;
  units: number;
  steps: number;
  ranks: number;
  everySteps: number;
  probeBatch: number;
  lrSpikeStep: number | "none";
  lrSpikeFactor: number;
  negativeBiasInit: number | false;
  datasetSize: number;
  seed: number;
  runId?: string;
}

/** Probes of 512 rows on 2 ranks reach a verdict's 6905 samples in 7 probes, before the spike at step 500. */
const DEMO_PROBE_BATCH = 512;
const DEMO_RANKS = 2;

/** Whether the user chose a setting (flag, environment or a non-default value from a config file). */
function chosen(name: string, opts: Record<string, unknown>, value: unknown): boolean {
  const attr = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const env = process.env[envOf(name)];
  const spec = OPTION_SPECS.find((s) => s.name === name);
  return (
    opts[attr] !== undefined ||
    (env !== undefined && env !== "") ||
    JSON.stringify(value) !== JSON.stringify(spec?.default)
  );
}

/**
 * Fills what a demo run should not share with other runs unless the user chose
 * otherwise: its own consumer group and (for the full demo) its own topics,
 * and a quieter service log so the printout stays readable.
 */
function demoSettings(base: Settings, opts: Record<string, unknown>, id: string, trainerOnly: boolean) {
  const s: Settings = { ...base };
  let ownTopics = false;
  if (!trainerOnly && !chosen("topic", opts, s.topic)) {
    s.topic = `reluwatch.demo.${id}.snapshots`;
    ownTopics = true;
  }
  if (!trainerOnly && !chosen("events_topic", opts, s.events_topic))
    s.events_topic = `reluwatch.demo.${id}.transitions`;
  if (!trainerOnly && !chosen("dead_letter_topic", opts, s.dead_letter_topic))
    s.dead_letter_topic = `reluwatch.demo.${id}.dead-letter`;
  if (!chosen("group", opts, s.group)) s.group = `reluwatch-demo-${id}`;
  // kafkajs warns about the producers' retry settings at start-up; only errors belong in the printout.
  if (!chosen("log_level", opts, s.log_level)) s.log_level = "error";
  return { settings: s, ownTopics };
}

export function registerDemoCommand(program: Command): void {
  const command = program
    .command("demo")
    .description(
      "the whole pipeline live: train a small MLP whose ReLUs die, consume its snapshots, print deaths as they are detected",
    )
    .option("--ci", "finish after the run; exit 1 if no unit death was detected")
    .option("--trainer-only", "run only the demo trainer, publishing to --brokers / --topic")
    .option("--keep-topics", "keep the run's own topics at the end (they are deleted by default)")
    .option("--layers <n>", "hidden ReLU layers", int, D.layers)
    .option("--units <n>", "units per hidden layer", int, D.units)
    .option("--steps <n>", "training steps", int, D.steps)
    .option("--ranks <n>", "data-parallel ranks", int, DEMO_RANKS)
    .option("--every-steps <n>", "probe every n steps", int, D.every_steps)
    .option("--probe-batch <n>", "examples per probe and rank", int, DEMO_PROBE_BATCH)
    .option(
      "--lr-spike-step <step|none>",
      "step of the learning-rate spike",
      stepOrNone,
      D.lr_spike_step ?? "none",
    )
    .option("--lr-spike-factor <x>", "learning-rate multiplier of the spike", num, D.lr_spike_factor)
    .addOption(
      new Option("--negative-bias-init [share]", "share of each layer's units born dead")
        .argParser(share)
        .preset(0.25)
        .default(false),
    )
    .option("--dataset-size <n>", "rows of the generated dataset", int, D.dataset_size)
    .option("--seed <n>", "seed for data, weights and sampling", int, D.seed)
    .option("--run-id <id>", "run_id of the snapshots (default: demo-<random>)");
  addOptionFlags(command, GROUPS);
  command.action(async (opts: DemoFlags & Record<string, unknown>, cmd: Command) => {
    const base = loadSettingsOrExit(opts, [...GROUPS]);
    const id = randomUUID().slice(0, 8);
    const { settings, ownTopics } = demoSettings(base, opts, id, Boolean(opts.trainerOnly));
    const log = createLogger("demo", settings.log_level);
    const trainer: Partial<DemoTrainerOptions> = {
      layers: opts.layers,
      units: opts.units,
      steps: opts.steps,
      ranks: opts.ranks,
      every_steps: opts.everySteps,
      probe_batch: opts.probeBatch,
      lr_spike_step: opts.lrSpikeStep === "none" ? null : opts.lrSpikeStep,
      lr_spike_factor: opts.lrSpikeFactor,
      negative_bias_init: opts.negativeBiasInit === false ? 0 : opts.negativeBiasInit,
      dataset_size: opts.datasetSize,
      seed: opts.seed,
      run_id: opts.runId ?? `demo-${id}`,
    };
    const print = (line: string) => process.stdout.write(`${line}\n`);
    process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
    try {
      if (opts.trainerOnly) {
        await runTrainerOnly(settings, trainer, print, log);
        process.exit(0);
      }
      let signals = 0;
      const untilStopped = new Promise<void>((resolve) => {
        const onSignal = () => {
          signals++;
          // A second Ctrl-C does not wait for a clean stop.
          if (signals > 1) process.exit(130);
          print("stopping (press Ctrl-C again to quit at once)");
          resolve();
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
      const result = await runLiveDemo({
        settings,
        trainer,
        ci: Boolean(opts.ci),
        deleteTopics: ownTopics && !opts.keepTopics,
        print,
        log,
        untilStopped,
      });
      print("");
      print(
        `stopped the consumer and the trainer; the broker at ${settings.kafka.brokers.join(",")} is still running`,
      );
      print("(the local one started by `make demo` stops with `make kafka-down`)");
      process.exit(result.exitCode);
    } catch (err) {
      if (fatalLine("demo", err, { brokers: settings.kafka.brokers }))
        exitOnFatal("demo", err, { brokers: settings.kafka.brokers });
      if (err instanceof Error && err.name !== "Error") cmd.error(`error: ${err.name}: ${err.message}`);
      throw err;
    }
  });
}
