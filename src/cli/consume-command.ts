import type { Command } from "commander";
import { addOptionFlags, CONSUME_GROUPS, loadSettingsOrExit } from "../config/index.js";
import { createLogger } from "../log.js";
import { startConsumerService } from "../service/consumer-service.js";
import { kafkaErrorOf } from "../source/kafka-errors.js";
import { CommandError, exitOnFatal } from "./fatal.js";

/** Time a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000;

export function registerConsumeCommand(program: Command): void {
  const command = program
    .command("consume")
    .description(
      "consume snapshots from Kafka; serve /metrics, /healthz, /readyz, /api and the unit explorer at /ui/; emit transition events",
    );
  addOptionFlags(command, CONSUME_GROUPS);
  command.action(async (opts: Record<string, unknown>) => {
    const settings = loadSettingsOrExit(opts, [...CONSUME_GROUPS]);
    const log = createLogger("consume", settings.log_level);
    const service = await startConsumerService(settings, log).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EADDRINUSE" && code !== "EADDRNOTAVAIL" && code !== "EACCES") throw err;
      return exitOnFatal(
        "consume",
        new CommandError(
          `cannot serve HTTP on ${settings.metrics_host}:${settings.metrics_port} (${code}); choose another --metrics-port or --metrics-host`,
        ),
      );
    });
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
    // The log line is the one line that says what to fix: the Kafka condition's code and message.
    service.failed.then((err) => {
      // No topic in context: past the start, the error may concern the events or dead-letter topic.
      const kafka = kafkaErrorOf(err, { brokers: settings.kafka.brokers, group: settings.group });
      log.fatal(
        { event: "consumer_failed", code: kafka?.code, error: kafka?.message ?? String(err) },
        `consuming stopped; exiting: ${kafka?.message ?? String(err)}`,
      );
      shutdown("consumer_failed", 1);
    });
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
