/**
 * How a command ends when it cannot go on: one line on stderr naming what to
 * fix, and a non-zero exit code. Expected conditions (a broker that is down, a
 * topic that does not exist, a message that is not a snapshot, a bad flag)
 * never show a stack trace; only errors nobody expected (bugs) keep theirs.
 */
import { CodecError } from "../codec/index.js";
import { type KafkaErrorContext, kafkaErrorOf } from "../source/kafka-errors.js";

/** An expected failure whose message already says what to fix. */
export class CommandError extends Error {
  constructor(
    message: string,
    /** 2 for a usage error (flags that do not go together), 1 otherwise. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/** The one line and exit code for an expected failure, or undefined for a bug. */
export function fatalLine(
  command: string,
  err: unknown,
  ctx: KafkaErrorContext = { brokers: [] },
): { line: string; exitCode: number } | undefined {
  if (err instanceof CommandError)
    return { line: `reluwatch: ${command}: ${err.message}`, exitCode: err.exitCode };
  if (err instanceof CodecError) return { line: `reluwatch: ${command}: ${err.message}`, exitCode: 1 }; // the message starts with the code
  const kafka = kafkaErrorOf(err, ctx);
  if (kafka) return { line: `reluwatch: ${command}: ${kafka.code}: ${kafka.message}`, exitCode: 1 };
  return undefined;
}

/** Ends the process for an expected failure; rethrows anything else. */
export function exitOnFatal(command: string, err: unknown, ctx?: KafkaErrorContext): never {
  const fatal = fatalLine(command, err, ctx);
  if (!fatal) throw err;
  process.stderr.write(`${fatal.line}\n`);
  process.exit(fatal.exitCode);
}
