/**
 * The parameters of every fast-check property in the suite, so that a run is
 * reproducible and a failure can be replayed:
 *
 * - The seed is fixed (DEFAULT_SEED): every run, here or in CI, tries the same
 *   inputs. `FC_SEED=<integer>` runs another seed; `FC_SEED=random` draws one.
 * - A failure names the seed and the counterexample's path, with the command
 *   that replays exactly that input (then shrinks from it), e.g.
 *
 *     FC_SEED=-1093573 FC_PATH="13:2:0" node --import tsx --test \
 *       --test-name-pattern="<the test's name>" test/unit/core/reduce.test.ts
 *
 *   FC_PATH belongs to one property: select that test with the pattern, or
 *   the other properties of the file replay a path that is not theirs.
 */
import fc from "fast-check";

/** An arbitrary but fixed seed; changing it changes the inputs every property sees. */
export const DEFAULT_SEED = 20_251_130;

function seedFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_SEED;
  if (value === "random") return (Math.random() * 2 ** 31) | 0;
  const seed = Number(value);
  if (!Number.isInteger(seed)) throw new Error(`FC_SEED must be an integer or "random", got "${value}"`);
  return seed;
}

/** The seed of this run: DEFAULT_SEED unless FC_SEED says otherwise. */
export const FC_SEED = seedFromEnv(process.env.FC_SEED);

function replayHint(details: fc.RunDetails<unknown>): string {
  const test = process.argv.find((a) => a.endsWith(".test.ts")) ?? "<test file>";
  return [
    `fast-check seed ${details.seed}, path "${details.counterexamplePath}". Replay this input with:`,
    `  FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath}" node --import tsx --test --test-name-pattern="<the test's name>" ${test}`,
  ].join("\n");
}

/**
 * fc.assert parameters: the run's seed (and FC_PATH when replaying), the
 * given ones (numRuns, ...), and a failure message that says how to replay.
 */
export function propertyParams<T>(
  params: Omit<fc.Parameters<T>, "seed" | "path" | "reporter"> = {},
): fc.Parameters<T> {
  const path = process.env.FC_PATH;
  return {
    ...params,
    seed: FC_SEED,
    ...(path ? { path } : {}),
    reporter(details) {
      if (!details.failed) return;
      throw new Error(
        `${fc.defaultReportMessage(details)}\n\n${replayHint(details as fc.RunDetails<unknown>)}`,
        {
          cause: details.errorInstance,
        },
      );
    },
  };
}
