/** The synthetic fleet: scenarios, ground truth and the snapshot generator. */
export { BinomialSampler } from "./binomial.js";
export { fleetSize, generateFleet } from "./fleet.js";
export { Prng } from "./prng.js";
export {
  BUILT_IN_SCENARIOS,
  DEFAULT_SCENARIO,
  type DeathEvent,
  layerName,
  type RateDistribution,
  type RevivalEvent,
  resolveScenario,
  runId,
  type Scenario,
  ScenarioError,
  type StaleRank,
  shardSlice,
  snapshotSteps,
  validateScenario,
} from "./scenario.js";
export {
  type FleetTruth,
  fleetTruth,
  layerTruth,
  type RateSegment,
  rankPublishes,
  rateAt,
  type UnitClass,
  type UnitTruth,
} from "./truth.js";
