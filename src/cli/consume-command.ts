import type { Command } from "commander";
import { addOptionFlags, loadSettingsOrExit } from "../config/index.js";
import { createLogger } from "../log.js";
import { startConsumerService } from "../service/consumer-service.js";

/** Time a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000;

export function registerConsumeCommand(program: Command): void {
  const command = program
    .command("consume")
    .description(
      "consume snapshots from Kafka; serve /metrics, /healthz, /readyz, /api and the unit explorer at /ui/; emit transition events",
    );
  addOptionFlags(command, ["kafka", "service", "detector", "limits"]);
  command.action(async (opts: Record<string, unknown>) => {
    const settings = loadSettingsOrExit(opts, ["kafka", "service", "detector", "limits"]);
    const log = createLogger("consume", settings.log_level);
    const service = await startConsumerService(settings, log);
    const shutdown = (signal: string, exitCode = 0) => {
      log.info({ event: "signal", signal }, "shutting down");
      const deadline = setTimeout(() => {
        log.error(
          { event: "shutdown_timeout", timeout_ms: SHUTDOWN_DEADLINE_MS },
          "graceful shutdown took too long",
        );
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      service.stop().then(
        () => process.exit(exitCode),
        (err: unknown) => {
          log.error({ event: "shutdown_failed", error: String(err) }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    // A consumer that stopped for good leaves nothing to serve: exit non-zero so it is restarted.
    service.failed.then((err) => {
      log.fatal({ event: "consumer_failed", error: String(err) }, "consuming stopped; exiting");
      shutdown("consumer_failed", 1);
    });
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
