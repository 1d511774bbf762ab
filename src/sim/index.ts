/** The synthetic fleet: scenarios, ground truth and the snapshot generator. */
export { BinomialSampler } from "./binomial.js";
export { fleetSize, generateFleet } from "./fleet.js";
export { Prng } from "./prng.js";
export {
  BUILT_IN_SCENARIOS,
  type Crash,
  DEFAULT_SCENARIO,
  type DeathEvent,
  layerName,
  type NanEvent,
  type RateDistribution,
  type RevivalEvent,
  resolveScenario,
  resumeTime,
  runId,
  type Scenario,
  ScenarioError,
  type StaleRank,
  shardSlice,
  snapshotSteps,
  type TimelineStep,
  timelineSteps,
  validateScenario,
} from "./scenario.js";
export {
  type FleetTruth,
  fleetTruth,
  layerTruth,
  type RateSegment,
  rankPublishes,
  rateAt,
  timelineRateAt,
  type UnitClass,
  type UnitTruth,
} from "./truth.js";
