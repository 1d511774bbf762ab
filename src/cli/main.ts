#!/usr/bin/env node
/**
 * The one reluwatch command. Each subcommand lives in its own module and is
 * registered here, so `reluwatch --help` lists everything the tool can do.
 */
import "./known-warnings.js";
import { Command } from "commander";
import { packageVersion } from "../paths.js";
import { registerBackendCommand } from "./backend-command.js";
import { registerConsumeCommand } from "./consume-command.js";
import { registerDemoCommand } from "./demo-command.js";
import { registerDemoTrainerCommand } from "./demo-trainer-command.js";
import { exitOnFatal } from "./fatal.js";
import { registerRecordCommand } from "./record-command.js";
import { registerReplayCommand } from "./replay-command.js";
import { registerSimulateCommand } from "./simulate-command.js";

export function buildProgram(): Command {
  const program = new Command("reluwatch")
    .description(
      "Watches neural-network training for dying ReLU units: Kafka in, Prometheus metrics and alerts out.",
    )
    .version(packageVersion)
    .showHelpAfterError();
  registerConsumeCommand(program);
  registerReplayCommand(program);
  registerBackendCommand(program);
  registerDemoTrainerCommand(program);
  registerDemoCommand(program);
  registerSimulateCommand(program);
  registerRecordCommand(program);
  return program;
}

const program = buildProgram();
let running = program.name();
program.hook("preAction", (_program, action) => {
  running = action.name();
});
try {
  await program.parseAsync(process.argv);
} catch (err) {
  exitOnFatal(running, err);
}
