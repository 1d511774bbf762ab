import { writeFile } from "node:fs/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import { DATASET_KINDS, type DatasetKind } from "../demo/dataset.js";
import { countUnits, deadUnitsToJson } from "../demo/ground-truth.js";
import { runDemo } from "../demo/ranks.js";
import { FanOutSink } from "../demo/sinks.js";
import { DEFAULT_TRAINER_OPTIONS as D, type DemoTrainerOptions } from "../demo/trainer.js";
import { JsonLinesSnapshotSink, snapshotToJson } from "../publisher/jsonl-sink.js";
import type { SnapshotSink } from "../publisher/probe.js";
import { SnapshotPublisher } from "../publisher/snapshot-publisher.js";
import { loadTf } from "../publisher/tf-backend.js";
import { int, num, share, stepOrNone } from "./arg-parsers.js";

interface Flags {
  layers: number;
  units: number;
  steps: number;
  lr: number;
  lrSpikeStep: number | "none" | null;
  lrSpikeFactor: number;
  lrSpikeSteps: number;
  lrAnnealStep: number | "none" | null;
  lrAnnealSteps?: number;
  negativeBiasInit: number | false;
  ranks: number;
  everySteps: number;
  probeBatch: number;
  batch: number;
  dataset: DatasetKind;
  datasetSize: number;
  seed: number;
  runId: string;
  out?: string;
  truthOut?: string;
  brokers?: string;
  topic: string;
}

const stdoutSink: SnapshotSink = {
  publish: (s) =>
    new Promise((resolve, reject) =>
      process.stdout.write(`${JSON.stringify(snapshotToJson(s))}\n`, (err) =>
        err ? reject(err) : resolve(),
      ),
    ),
};

/**
 * `reluwatch demo-trainer`: trains the demo MLP, probing its ReLU layers, and
 * writes the snapshots as JSON lines and the end-of-run ground truth as JSON.
 */
export function registerDemoTrainerCommand(program: Command): void {
  program
    .command("demo-trainer")
    .description(
      "train a small MLP whose ReLU units die (LR spike, born-dead units) and publish probe snapshots",
    )
    .option("--layers <n>", "hidden ReLU layers", int, D.layers)
    .option("--units <n>", "units per hidden layer", int, D.units)
    .option("--steps <n>", "training steps", int, D.steps)
    .option("--lr <rate>", "SGD learning rate", num, D.lr)
    .option(
      "--lr-spike-step <step|none>",
      "first step of the learning-rate spike",
      stepOrNone,
      D.lr_spike_step,
    )
    .option("--lr-spike-factor <x>", "learning-rate multiplier during the spike", num, D.lr_spike_factor)
    .option("--lr-spike-steps <n>", "how many steps the spike lasts", int, D.lr_spike_steps)
    .option(
      "--lr-anneal-step <step|none>",
      "from this step the learning rate falls linearly to 1% (default none)",
      stepOrNone,
      "none",
    )
    .option("--lr-anneal-steps <n>", "length of the fall (default: until the last step)", int)
    .addOption(
      new Option(
        "--negative-bias-init [share]",
        "share of each layer's units born dead (large negative bias)",
      )
        .argParser(share)
        .preset(0.25)
        .default(false),
    )
    .option("--ranks <n>", "data-parallel ranks (child processes averaging gradients)", int, D.ranks)
    .option("--every-steps <n>", "probe every n steps", int, D.every_steps)
    .option("--probe-batch <n>", "examples per probe", int, D.probe_batch)
    .option("--batch <n>", "training batch size per rank", int, D.batch)
    .addOption(new Option("--dataset <kind>", "generated dataset").choices(DATASET_KINDS).default(D.dataset))
    .option("--dataset-size <n>", "rows in the generated dataset", int, D.dataset_size)
    .option("--seed <n>", "seed for data, weights and sampling", int, D.seed)
    .option("--run-id <id>", "run_id of the snapshots", D.run_id)
    .option("--brokers <list>", "publish the snapshots to Kafka at these bootstrap servers (host:port,...)")
    .option("--topic <name>", "snapshot topic, with --brokers", "reluwatch.snapshots")
    .option("--out <file>", "write snapshots as JSON lines to this file ('-' for stdout)")
    .option("--truth-out <file>", "write the ground truth (truly dead units per layer) as JSON")
    .action(async (flags: Flags, command: Command) => {
      try {
        await demoTrainer(flags);
      } catch (err) {
        // Typed errors (bad options, divergence, a failed rank) end the command with their message, not a stack.
        if (err instanceof Error && err.name !== "Error") command.error(`error: ${err.name}: ${err.message}`);
        throw err;
      }
    });
}

async function demoTrainer(flags: Flags): Promise<void> {
  const { backend } = await loadTf((m) => process.stderr.write(`${m}\n`));
  const options: Partial<DemoTrainerOptions> = {
    layers: flags.layers,
    units: flags.units,
    steps: flags.steps,
    lr: flags.lr,
    lr_spike_step: flags.lrSpikeStep === "none" ? null : flags.lrSpikeStep,
    lr_spike_factor: flags.lrSpikeFactor,
    lr_spike_steps: flags.lrSpikeSteps,
    lr_anneal_step: flags.lrAnnealStep === "none" || flags.lrAnnealStep === null ? null : flags.lrAnnealStep,
    lr_anneal_steps: flags.lrAnnealSteps ?? null,
    negative_bias_init: flags.negativeBiasInit === false ? 0 : flags.negativeBiasInit,
    ranks: flags.ranks,
    every_steps: flags.everySteps,
    probe_batch: flags.probeBatch,
    batch: flags.batch,
    dataset: flags.dataset,
    dataset_size: flags.datasetSize,
    seed: flags.seed,
    run_id: flags.runId,
  };
  const file = flags.out && flags.out !== "-" ? new JsonLinesSnapshotSink(flags.out) : undefined;
  const kafka = flags.brokers ? await connectPublisher(flags.brokers, flags.topic) : undefined;
  const sinks: SnapshotSink[] = [];
  if (file) sinks.push(file);
  if (flags.out === "-") sinks.push(stdoutSink);
  if (kafka) sinks.push(kafka);
  const sink = new FanOutSink(sinks);
  try {
    // With --ranks N the ranks send their snapshots here over IPC, each stamped with its own
    // rank, and this process publishes them all through one producer.
    const result = await runDemo(options, { sink, log: (m) => process.stderr.write(`${m}\n`) });
    const truth = deadUnitsToJson(result.truth);
    if (flags.truthOut) {
      const doc = {
        run_id: result.options.run_id,
        backend,
        ranks: result.options.ranks,
        steps: result.options.steps,
        layer_units: result.options.units,
        dead: truth,
        born_dead: deadUnitsToJson(result.bornDead),
        final_loss: result.finalLoss,
      };
      await writeFile(flags.truthOut, `${JSON.stringify(doc, null, 2)}\n`);
    }
    const perLayer = Object.entries(truth)
      .map(([layer, units]) => `${layer} ${units.length}/${result.options.units}`)
      .join(", ");
    process.stderr.write(
      `demo-trainer: ${result.options.steps} steps on ${result.options.ranks} rank(s), ${sink.count} snapshots, ` +
        `final loss ${result.finalLoss.toFixed(4)}; truly dead: ${countUnits(result.truth)} (${perLayer})\n`,
    );
  } finally {
    await file?.close();
    if (kafka) {
      const stats = await kafka.close();
      process.stderr.write(
        `demo-trainer: published to ${flags.topic}: ${stats.sent} sent, ${stats.dropped} dropped, ${stats.failed} failed\n`,
      );
    }
  }
}

async function connectPublisher(brokers: string, topic: string): Promise<SnapshotPublisher> {
  const list = brokers
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b !== "");
  if (list.length === 0)
    throw new InvalidArgumentError(`--brokers: expected host:port[,...], got "${brokers}"`);
  // "wait": a demo run should show every probe, so a slow broker slows the trainer instead of losing snapshots.
  const publisher = new SnapshotPublisher({
    brokers: list,
    topic,
    overflow: "wait",
    wait_timeout_ms: 30_000,
  });
  await publisher.connect();
  return publisher;
}
