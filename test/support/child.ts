/**
 * Child processes for tests, each with a deadline. A child that hangs (a
 * broker that never answers, a CLI waiting on something that never comes)
 * fails its test with the command and what it printed, instead of stalling the
 * whole run until someone kills it.
 */
import { type SpawnOptions, type SpawnSyncOptions, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../src/paths.js";

/**
 * The default deadline. Generous, because a shared machine can be slow: it only
 * has to turn a hang into a failure, never to judge how fast a command is.
 */
export const CHILD_TIMEOUT_MS = 120_000;

/** How a finished child ended and what it printed. */
export interface ChildResult {
  /** The exit code, or null when a signal ended it. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type ChildOptions = Omit<SpawnOptions, "stdio"> & { timeout?: number };

function commandLine(file: string, args: readonly string[]): string {
  return [file, ...args].join(" ");
}

export class ChildTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly output: string,
  ) {
    super(`${command} did not finish within ${timeoutMs / 1000} s and was killed; its output:\n${output}`);
    this.name = "ChildTimeoutError";
  }
}

/** A non-zero exit, shaped like execFile's error: `code`, `stdout`, `stderr`, the stderr in the message. */
export class ChildExitError extends Error {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(command: string, result: ChildResult) {
    super(`${command} exited with ${result.status ?? result.signal}:\n${result.stderr}`);
    this.name = "ChildExitError";
    this.code = result.status;
    this.signal = result.signal;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }
}

/**
 * Runs a command to its end and resolves with how it ended, whatever the exit
 * code; rejects only when it cannot start or outlives `timeout` (then it is
 * killed with SIGKILL, so nothing it started keeps the test waiting).
 */
export function runToExit(
  file: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<ChildResult> {
  const { timeout = CHILD_TIMEOUT_MS, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...spawnOptions, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeout);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // "close", not "exit": the output is complete only once the pipes are.
    child.once("close", (status, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new ChildTimeoutError(commandLine(file, args), timeout, stdout + stderr));
      else resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed: rejects with a ChildExitError on a non-zero exit. */
export async function runFile(
  file: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  const result = await runToExit(file, args, options);
  if (result.status !== 0) throw new ChildExitError(commandLine(file, args), result);
  return result;
}

/** spawnSync with a deadline: throws a ChildTimeoutError instead of returning a killed child's result. */
export function runSync(
  file: string,
  args: readonly string[],
  options: Omit<SpawnSyncOptions, "encoding"> = {},
): ChildResult {
  const timeout = options.timeout ?? CHILD_TIMEOUT_MS;
  const r = spawnSync(file, args, { ...options, timeout, killSignal: "SIGKILL", encoding: "utf8" });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT") {
    throw new ChildTimeoutError(commandLine(file, args), timeout, `${r.stdout ?? ""}${r.stderr ?? ""}`);
  }
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `reluwatch <args>` as a user runs it, from source. */
const CLI = ["--import", "tsx", join(packageRoot, "src/cli/main.ts")];

/** The CLI run to its end (see runToExit), from the package root. */
export function cli(args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  return runToExit(process.execPath, [...CLI, ...args], { cwd: packageRoot, ...options });
}

/** The CLI run synchronously (see runSync), from the package root. */
export function cliSync(
  args: readonly string[],
  options: Omit<SpawnSyncOptions, "encoding"> = {},
): ChildResult {
  return runSync(process.execPath, [...CLI, ...args], { cwd: packageRoot, ...options });
}

/** The argument list that runs the CLI from source under `process.execPath`. */
export function cliArgs(args: readonly string[]): string[] {
  return [...CLI, ...args];
}
