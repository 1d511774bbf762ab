import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidArgumentError } from "commander";
import { timeArg } from "../../../src/cli/record-command.js";
import { parseEvent, parseStaleRank, scenarioFromFlags } from "../../../src/cli/simulate-command.js";
import { ScenarioError } from "../../../src/sim/index.js";

test("event and stale-rank flags parse, accumulate, and refuse malformed values", () => {
  assert.deepEqual(parseEvent("2:0.3@500"), [{ layer: 2, fraction: 0.3, step: 500 }]);
  assert.deepEqual(parseEvent("0:0.25@1000#1", [{ layer: 2, fraction: 0.3, step: 500 }]), [
    { layer: 2, fraction: 0.3, step: 500 },
    { layer: 0, fraction: 0.25, step: 1000, run: 1 },
  ]);
  assert.throws(() => parseEvent("2:0.3"), InvalidArgumentError);
  assert.throws(() => parseEvent("2:1.5@3"), InvalidArgumentError);
  assert.deepEqual(parseStaleRank("3@800"), [{ rank: 3, after_step: 800 }]);
  assert.throws(() => parseStaleRank("x@1"), InvalidArgumentError);
});

test("flags override the named scenario field by field", () => {
  const s = scenarioFromFlags({ scenario: "lr-spike", seed: 9, units: 100, silentFraction: 0.5 });
  assert.equal(s.name, "lr-spike");
  assert.equal(s.seed, 9);
  assert.equal(s.units, 100);
  assert.deepEqual(s.deaths, [{ layer: 2, fraction: 0.3, step: 500 }]);
  assert.deepEqual(s.rates, { active: [0.05, 0.6], silent: [1e-3, 1e-2], silent_fraction: 0.5 });
  const replaced = scenarioFromFlags({ scenario: "lr-spike", death: [{ layer: 0, fraction: 0.1, step: 5 }] });
  assert.deepEqual(replaced.deaths, [{ layer: 0, fraction: 0.1, step: 5 }]);
  assert.throws(
    () =>
      scenarioFromFlags({ scenario: "healthy", layers: 2, death: [{ layer: 2, fraction: 0.1, step: 5 }] }),
    ScenarioError,
  );
});

test("record's time flags take ISO 8601 or epoch milliseconds", () => {
  assert.equal(timeArg("2026-01-01T00:00:00Z"), Date.UTC(2026, 0, 1));
  assert.equal(timeArg("1764000000000"), 1764000000000);
  assert.throws(() => timeArg("yesterday"), InvalidArgumentError);
});
