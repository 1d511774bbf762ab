/** The workload every end-to-end benchmark runs: bench/e2e.ts fills its topics with it, the load generator publishes it. */
import { resolveScenario, type Scenario } from "../../src/sim/index.js";

export const UNITS = 4096;
export const LAYERS = 48;
export const RANKS = 8;
/** Steps between two probes of the simulated trainer: a snapshot step of the topic is this many training steps. */
export const INTERVAL = 50;

/** `steps` probes of every rank and layer: RANKS × LAYERS snapshots each. */
export function benchScenario(steps: number): Scenario {
  return resolveScenario("healthy", {
    ranks: RANKS,
    layers: LAYERS,
    units: UNITS,
    steps: steps * INTERVAL,
    interval: INTERVAL,
  });
}
