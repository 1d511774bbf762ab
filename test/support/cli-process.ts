/**
 * Runs a one-shot `reluwatch` command (record, simulate, ...) as a child
 * process, as a user would, with a timeout so a hang fails the test instead of
 * stalling it, and splits its stderr into JSON log lines and the rest (what a
 * person reads: the one-line failure message, and nothing else).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../../src/paths.js";

export interface CliResult {
  /** Exit code, or the signal's name when the timeout killed it. */
  code: number | string;
  stderr: string;
  /** stderr lines that parse as JSON objects (the log). */
  logs: Array<Record<string, unknown>>;
  /** Every other non-empty stderr line. */
  text: string[];
}

export interface RunningCli {
  /** Filled as the command writes: tests can wait for a line before acting. */
  logs: Array<Record<string, unknown>>;
  text: string[];
  result: Promise<CliResult>;
}

/** Starts the command; it is killed (SIGKILL) if it runs longer than `timeoutMs`. */
export function startCli(args: string[], timeoutMs = 120_000): RunningCli {
  const child = spawn(process.execPath, ["--import", "tsx", join(packageRoot, "src/cli/main.ts"), ...args], {
    cwd: packageRoot,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const logs: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const all: string[] = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    all.push(line);
    const { logs: l, text: t } = splitStderr(line);
    logs.push(...l);
    text.push(...t);
  });
  const result = once(child, "close").then(([code, signal]) => {
    clearTimeout(timer);
    return { code: (code ?? signal) as number | string, stderr: all.join("\n"), logs, text };
  });
  return { logs, text, result };
}

export function runCli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return startCli(args, timeoutMs).result;
}

export function splitStderr(stderr: string): Pick<CliResult, "logs" | "text"> {
  const logs: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  for (const line of stderr.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const entry = JSON.parse(line) as unknown;
      if (entry && typeof entry === "object" && !Array.isArray(entry)) {
        logs.push(entry as Record<string, unknown>);
        continue;
      }
    } catch {
      // not a log line
    }
    text.push(line);
  }
  return { logs, text };
}

/** A stack-trace frame as Node prints it ("    at fn (file:line:col)"). */
export const STACK_FRAME = /^\s+at /m;
