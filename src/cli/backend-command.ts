import type { Command } from "commander";
import { loadTf } from "../publisher/tf-backend.js";

/** `reluwatch tf-backend`: which TensorFlow.js backend a trainer on this machine would get. */
export function registerBackendCommand(program: Command): void {
  program
    .command("tf-backend")
    .description("print the TensorFlow.js backend the trainer-side probe would use here")
    .action(async () => {
      const { backend, fallbackReason } = await loadTf();
      process.stdout.write(`${backend}${fallbackReason ? ` (fallback: ${fallbackReason})` : ""}\n`);
    });
}
