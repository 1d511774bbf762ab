/**
 * commander argument parsers shared by the subcommands' own flags (the
 * service settings have theirs in src/config). Each throws commander's
 * InvalidArgumentError, so a bad flag ends in one line naming it.
 */
import { InvalidArgumentError } from "commander";

export function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}

export function num(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

/** A step, or "none" (kept a string: commander turns a parser's null into ""). */
export function stepOrNone(value: string): number | "none" {
  return value === "none" ? "none" : int(value);
}

export function share(value: string): number {
  const n = num(value);
  if (n < 0 || n > 1) throw new InvalidArgumentError(`expected a share in [0, 1], got "${value}"`);
  return n;
}
