import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { generatedRuleFiles, RULES_FILE } from "../../../deploy/generated-rules.js";
import {
  ALERT_NAMES,
  type AlertingRule,
  buildRules,
  EXPLORER_URL_ANNOTATION,
  PRODUCTION_TIMINGS,
  RUNBOOK_BASE_URL,
  renderRulesYaml,
  THRESHOLDS,
} from "../../../deploy/prometheus/rules.js";
import { packageRoot } from "../../../src/paths.js";
import { knownSeries, repoFile, run, seriesNames } from "../../support/deploy-files.js";
import { FAST_TIMINGS } from "../../support/prometheus.js";

const TESTS_FILE = "deploy/prometheus/tests/alerts.test.yml";

interface PromtoolTestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

function alertingRules(): AlertingRule[] {
  return buildRules()
    .groups.flatMap((g) => g.rules)
    .filter((r): r is AlertingRule => "alert" in r);
}

describe("Prometheus rules", () => {
  const tmp = mkdtempSync(join(tmpdir(), "reluwatch-rules-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("committed rule files are what deploy/prometheus/rules.ts renders (run `make rules`)", () => {
    for (const [path, content] of Object.entries(generatedRuleFiles())) {
      assert.equal(repoFile(path), content, `${path} is stale: run \`make rules\``);
    }
  });

  it("promtool check rules accepts the shipped file and the fast-timed test variant", async () => {
    const fast = join(tmp, "fast.rules.yml");
    writeFileSync(fast, renderRulesYaml(FAST_TIMINGS));
    const { stdout } = await run("promtool", ["check", "rules", join(packageRoot, RULES_FILE), fast]);
    assert.match(stdout, /SUCCESS: 21 rules found[\s\S]*SUCCESS: 21 rules found/);
  });

  it("promtool test rules passes every alert's unit tests", async () => {
    const { stdout } = await run("promtool", ["test", "rules", join(packageRoot, TESTS_FILE)]);
    assert.match(stdout, /SUCCESS/);
    assert.doesNotMatch(stdout, /FAILED/);
  });

  it("every alert has a promtool case where it fires and one where it stays quiet", () => {
    const file = parse(repoFile(TESTS_FILE)) as PromtoolTestFile;
    assert.deepEqual(file.rule_files, ["../rules/reluwatch.rules.yml"]);
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const name of ALERT_NAMES) {
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(
        mine.some((c) => c.exp_alerts.length > 0),
        `${name}: no case where it fires`,
      );
      assert.ok(
        mine.some((c) => c.exp_alerts.length === 0),
        `${name}: no case where it stays quiet`,
      );
    }
  });

  it("alerts follow the community conventions and link a runbook section that exists", () => {
    const rules = alertingRules();
    assert.deepEqual(
      rules.map((r) => r.alert),
      [...ALERT_NAMES],
    );
    const runbook = repoFile("docs/runbook.md");
    for (const r of rules) {
      assert.match(r.alert, /^[A-Z][a-zA-Z]+$/, "CamelCase name");
      assert.ok(["info", "warning", "critical"].includes(r.labels.severity), `${r.alert}: severity`);
      assert.ok(r.annotations.summary.length > 0 && r.annotations.description.includes("{{ $value"));
      const anchor = r.alert.toLowerCase();
      assert.equal(r.annotations.runbook_url, `${RUNBOOK_BASE_URL}#${anchor}`);
      assert.match(runbook, new RegExp(`^## ${r.alert}$`, "m"), `docs/runbook.md lacks a section ${r.alert}`);
      if (r.alert.startsWith("Relu") && !r.alert.startsWith("Reluwatch")) {
        assert.match(r.annotations.description, /\$labels\.run/, `${r.alert}: description names the run`);
        assert.match(r.annotations.description, /\$labels\.layer/, `${r.alert}: description names the layer`);
        assert.equal(
          r.annotations.explorer_url,
          EXPLORER_URL_ANNOTATION,
          `${r.alert}: links the layer's explorer page`,
        );
      } else {
        assert.equal(r.annotations.explorer_url, undefined, `${r.alert}: no layer, no explorer link`);
      }
    }
  });

  it("thresholds appear in expressions only through THRESHOLDS", () => {
    const byName = Object.fromEntries(alertingRules().map((r) => [r.alert, r.expr]));
    assert.match(byName.ReluLayerDying!, new RegExp(`>= ${THRESHOLDS.deadRatioWarning} `));
    assert.match(byName.ReluLayerDead!, new RegExp(`>= ${THRESHOLDS.deadRatioCritical}$`));
    assert.match(byName.ReluwatchConsumerLagging!, new RegExp(`> ${THRESHOLDS.consumerLagMessages}$`));
    assert.ok(THRESHOLDS.deadRatioWarning < THRESHOLDS.deadRatioCritical);
  });

  it("every series an expression reads is in the metric contract or recorded by a rule", () => {
    const known = knownSeries();
    for (const rule of buildRules().groups.flatMap((g) => g.rules)) {
      for (const name of seriesNames(rule.expr)) {
        assert.ok(known.has(name), `${rule.expr} reads ${name}, which nothing exports`);
      }
    }
  });

  // Groups run on independent schedules in no fixed order, so a rule reading a
  // recording from another group (or from a later rule) sees a value from some
  // earlier evaluation: ReluLayerDying once said "19%" or "20%" for one input.
  it("every recorded series is read only after its rule, in the same group", () => {
    const recordedBy = new Map<string, string>();
    for (const group of buildRules().groups) {
      for (const rule of group.rules) {
        if ("record" in rule) {
          assert.ok(!recordedBy.has(rule.record), `${rule.record} is recorded twice`);
          recordedBy.set(rule.record, group.name);
        }
      }
    }
    for (const group of buildRules().groups) {
      const earlier = new Set<string>();
      for (const rule of group.rules) {
        const name = "record" in rule ? rule.record : rule.alert;
        for (const series of seriesNames(rule.expr).filter((s) => recordedBy.has(s))) {
          assert.ok(
            earlier.has(series),
            `${name} (group ${group.name}) reads ${series}, recorded ${
              recordedBy.get(series) === group.name ? "after it" : `in group ${recordedBy.get(series)}`
            }: its value would depend on evaluation order`,
          );
        }
        if ("record" in rule) earlier.add(rule.record);
      }
    }
  });

  it("the promtool cases do not pin a group evaluation order that production lacks", () => {
    assert.doesNotMatch(repoFile(TESTS_FILE), /^group_eval_order:/m);
  });

  it("the fast variant differs from production only in durations", () => {
    const strip = (yaml: string) => yaml.replace(/\b\d+[smh]\b/g, "D");
    assert.equal(strip(renderRulesYaml(FAST_TIMINGS)), strip(renderRulesYaml(PRODUCTION_TIMINGS)));
    assert.notEqual(renderRulesYaml(FAST_TIMINGS), renderRulesYaml(PRODUCTION_TIMINGS));
  });
});
