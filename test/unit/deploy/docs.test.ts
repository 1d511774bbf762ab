import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { METRICS } from "../../../deploy/metrics-contract.js";
import { ALERT_NAMES, PRODUCTION_TIMINGS, RECORDED, THRESHOLDS } from "../../../deploy/prometheus/rules.js";
import { repoFile } from "../../support/deploy-files.js";

/** Names in the first column of the markdown tables of `text`. */
function tableNames(text: string): string[] {
  return [...text.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

describe("observability docs agree with the sources", () => {
  it("docs/metrics.md lists exactly the contract's metrics, with their type and labels", () => {
    const doc = repoFile("docs/metrics.md");
    assert.deepEqual(tableNames(doc).sort(), METRICS.map((m) => m.name).sort());
    for (const m of METRICS) {
      const row = doc.split("\n").find((l) => l.startsWith(`| \`${m.name}\` |`))!;
      const [, , type, labels] = row.split("|").map((c) => c.trim());
      assert.equal(type, m.type, `${m.name}: type`);
      const documented = labels!
        .replace(/[()]/g, "")
        .split(",")
        .map((l) => l.trim())
        .filter(Boolean);
      const expected = m.type === "histogram" ? ["le"] : [...m.labels];
      assert.deepEqual(documented, expected, `${m.name}: labels`);
    }
  });

  it("deploy/prometheus/README.md lists every recording rule and alert", () => {
    const readme = repoFile("deploy/prometheus/README.md");
    assert.deepEqual(tableNames(readme).sort(), Object.values(RECORDED).sort());
    for (const a of ALERT_NAMES) assert.match(readme, new RegExp(`^\\| ${a} \\|`, "m"));
  });

  it("the runbook quotes the thresholds and durations in force", () => {
    const runbook = repoFile("docs/runbook.md");
    const pct = (r: number) => `${Math.round(r * 1000) / 10} %`;
    assert.ok(runbook.includes(`at or above ${pct(THRESHOLDS.deadRatioWarning)}`));
    assert.ok(runbook.includes(`at or above ${pct(THRESHOLDS.deadRatioCritical)}`));
    assert.ok(runbook.includes(`At least ${pct(THRESHOLDS.bornDeadRatio)}`));
    assert.ok(runbook.includes(`for ${THRESHOLDS.noSnapshotsSeconds / 60} minutes`));
    assert.ok(runbook.includes(`more than ${THRESHOLDS.consumerLagMessages.toLocaleString("en")} messages`));
    assert.ok(runbook.includes(`last ${PRODUCTION_TIMINGS.deathsWindow.replace("m", "")} minutes`));
  });
});
