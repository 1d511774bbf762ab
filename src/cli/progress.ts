import cliProgress from "cli-progress";

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

/** A progress bar on stderr when it is a terminal; silent otherwise, so pipes and logs stay clean. */
export function progressBar(label: string, total: number | undefined): Progress {
  if (!process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: total
        ? `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}`
        : `${label} {value} snapshots`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, 0);
  return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
}
