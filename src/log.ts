import { pino } from "pino";

/**
 * One JSON-lines logger for the whole process. Everything goes to stderr so
 * that subcommands which write data to stdout (replay, record) stay pipeable.
 */
export type Logger = pino.Logger;

export function createLogger(
  name: string,
  level: string = process.env.RELUWATCH_LOG_LEVEL ?? "info",
): Logger {
  return pino({ name, level, base: { svc: "reluwatch" } }, pino.destination(2));
}
