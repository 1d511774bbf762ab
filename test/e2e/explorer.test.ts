/**
 * The unit explorer in a real browser (Debian's chromium through
 * playwright-core) against `reluwatch consume` as a child process fed by the
 * real broker. A simulated run goes out in two phases: the explorer is read
 * after the first (its counts must equal the API's, its map must hold one
 * cell per unit, a dead unit opened from the map must show its bound and the
 * step the offline detector says it died at), and must then follow the second
 * phase without a reload. Screenshots go to .tmp/test-output/.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import type { ActivationSnapshot, LayerSummary } from "../../src/core/index.js";
import { generateFleet, resolveScenario } from "../../src/sim/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { launchBrowser, TEST_OUTPUT_DIR, type TestBrowser } from "../support/browser.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector } from "../support/fleet.js";

const SPLIT_STEP = 1200;
const scenario = resolveScenario("lr-spike", {
  seed: 11,
  units: 1000,
  layers: 3,
  ranks: 2,
  steps: 2000,
  born_dead: 0.02,
  deaths: [{ layer: 2, fraction: 0.3, step: 500 }],
});
const snapshots: ActivationSnapshot[] = [...generateFleet(scenario)];
const phase1 = snapshots.filter((s) => s.step < SPLIT_STEP);
const phase2 = snapshots.filter((s) => s.step >= SPLIT_STEP);

/** Elements as the page functions below see them (the tests' type check has no DOM library). */
type Dataset = { dataset: Record<string, string | undefined> };

/** The number shown in an element, thousands separators and all. */
async function shownNumber(page: Page, selector: string): Promise<number> {
  const text = (await page.textContent(selector)) ?? "";
  return Number(text.replace(/[^0-9.]/g, ""));
}

describe("the unit explorer in chromium, against a consumer fed by the broker", () => {
  let broker: TestBroker;
  let consumer: ConsumerProcess | undefined;
  let browser: TestBrowser | undefined;
  let topic = "";
  let api = "";
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(TEST_OUTPUT_DIR, `explorer-${name}.png`), fullPage: true });

  before(async () => {
    mkdirSync(TEST_OUTPUT_DIR, { recursive: true });
    broker = await getBroker();
    topic = uniqueTopic("explorer");
    await createTopic(broker, topic, 1);
    await createTopic(broker, `${topic}.events`, 1);
    await produceSnapshots(kafkaClient(broker), topic, phase1);
    consumer = await startConsumerProcess([...consumerArgs(broker.brokers, topic)]);
    api = consumer.baseUrl;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    if (consumer) {
      consumer.child.kill("SIGTERM");
      const killer = setTimeout(() => consumer?.child.kill("SIGKILL"), 15_000);
      await consumer.exited;
      clearTimeout(killer);
    }
  });

  it("shows the API's counts, one cell per unit, a dead unit's bound and death step, and follows new snapshots", async () => {
    const reference = referenceDetector(phase1);
    const phase1Step = Math.max(...phase1.map((s) => s.step));
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON answers, checked field by field below
    const getJson = async (path: string) => (await fetch(`${api}${path}`)).json() as Promise<any>;
    // Wait until the consumer has applied every phase-1 snapshot of every layer.
    await waitFor("phase 1 applied", async () => {
      const { runs } = await getJson("/api/runs");
      return runs.length === 1 &&
        runs[0].step === phase1Step &&
        runs[0].dead === reference.detector.summaries().reduce((n, s) => n + s.units_by_state.DEAD, 0)
        ? true
        : undefined;
    });
    const run = reference.detector.summaries()[0]!.run_id;
    const { layers } = (await getJson(`/api/runs/${encodeURIComponent(run)}/layers`)) as {
      layers: LayerSummary[];
    };
    assert.equal(layers.length, 3);

    const page = await browser!.newPage();
    await page.goto(`${api}/ui/`);
    await page.waitForSelector("[data-testid=runs] [data-testid=run-dead]");
    const { runs } = await getJson("/api/runs");
    assert.equal(await shownNumber(page, "[data-testid=run-dead]"), runs[0].dead);
    await shot(page, "runs");

    await page.click(`[data-testid=runs] a`);
    await page.waitForSelector("[data-testid=layers] tbody tr");
    for (const l of layers) {
      for (const state of ["ACTIVE", "MOSTLY_SILENT", "DEAD", "UNKNOWN"] as const) {
        const cell = `[data-testid=layers] tr[data-layer="${l.layer}"] td[data-state=${state}]`;
        assert.equal(await shownNumber(page, cell), l.units_by_state[state], `${l.layer} ${state}`);
      }
    }
    await shot(page, "run");

    // The dying layer: the most dead units.
    const dying = [...layers].sort((a, b) => b.units_by_state.DEAD - a.units_by_state.DEAD)[0]!;
    await page.click(`[data-testid=layers] tr[data-layer="${dying.layer}"] a`);
    await page.waitForSelector("canvas[data-testid=layer-map][data-cells]");
    for (const state of ["ACTIVE", "MOSTLY_SILENT", "DEAD", "UNKNOWN"] as const) {
      assert.equal(
        await shownNumber(page, `[data-testid=count-${state}]`),
        dying.units_by_state[state],
        state,
      );
    }
    assert.equal(await shownNumber(page, "[data-testid=born-dead]"), dying.born_dead_units);
    const canvas = await page.$eval("canvas[data-testid=layer-map]", (c) => ({
      ...(c as unknown as Dataset).dataset,
    }));
    assert.equal(Number(canvas.cells), dying.layer_units, "one cell per unit");
    assert.equal(Number(canvas.units), dying.layer_units);

    // A unit that died (not born dead), opened by clicking its cell: cells are in unit order by default.
    const layerPath = `/api/runs/${encodeURIComponent(run)}/layers/${encodeURIComponent(dying.layer)}`;
    const deadPage = await getJson(`${layerPath}?state=dead&born_dead=false&limit=1`);
    const dead = deadPage.units[0];
    assert.ok(dead, "the layer has a unit that died");
    const cell = Number(canvas.cell);
    const cols = Number(canvas.cols);
    const position = {
      x: (dead.unit % cols) * cell + cell / 2,
      y: Math.floor(dead.unit / cols) * cell + cell / 2,
    };
    // Hovering the cell shows the unit's rate and bound.
    await page.hover("canvas[data-testid=layer-map]", { position });
    await page.waitForSelector("[data-testid=map-tooltip]:not([hidden])");
    assert.match(
      (await page.textContent("[data-testid=map-tooltip]")) ?? "",
      new RegExp(`^unit ${dead.unit} · dead.*since its last fire: rate < \\S+ at 99\\.9% confidence$`),
    );
    await shot(page, "layer");
    await page.screenshot({
      path: join(TEST_OUTPUT_DIR, "explorer-layer-top.png"),
      clip: { x: 0, y: 0, width: 1040, height: 620 },
    });
    await page.click("canvas[data-testid=layer-map]", { position });
    await page.waitForSelector("[data-testid=unit-death-step][data-value]");
    assert.match(page.url(), new RegExp(`unit=${dead.unit}$`));
    assert.equal(await page.textContent("[data-testid=unit-state]"), "dead");
    const bound = Number(await page.getAttribute("[data-testid=unit-bound]", "data-value"));
    assert.equal(bound, dead.rate_upper_bound);
    assert.ok(bound < 0.001, "the dead verdict's bound is below dead_rate");
    assert.match((await page.textContent("[data-testid=unit-bound]")) ?? "", /99\.9% confidence/);
    const expectedDeath = reference.transitions.find(
      (t) => t.layer === dying.layer && t.unit === dead.unit && t.to === "DEAD",
    )!;
    assert.equal(
      Number(await page.getAttribute("[data-testid=unit-death-step]", "data-value")),
      expectedDeath.step,
    );
    await shot(page, "unit");

    // Back to the map, then phase 2: the page must follow without a reload.
    await page.goBack();
    await page.waitForSelector("[data-testid=layer-step][data-step]");
    assert.equal(Number(await page.getAttribute("[data-testid=layer-step]", "data-step")), phase1Step);
    await page.evaluate("window.notReloaded = true");
    await produceSnapshots(kafkaClient(broker), topic, phase2);
    const finalStep = Math.max(...phase2.map((s) => s.step));
    await page.waitForSelector(`[data-testid=layer-step][data-step="${finalStep}"]`, { timeout: 60_000 });
    assert.equal(await page.evaluate("window.notReloaded"), true, "the page was not reloaded");
    const map = await page.$eval(
      "canvas[data-testid=layer-map]",
      (c) => (c as unknown as Dataset).dataset.step,
    );
    assert.equal(Number(map), finalStep, "the map follows too");
    // Both the page and the API settle on the state after the last snapshot.
    await waitFor("the page's dead count to equal the API's", async () => {
      const after = await getJson(`${layerPath}?limit=0`);
      const shown = await shownNumber(page, "[data-testid=count-DEAD]");
      return shown === after.summary.units_by_state.DEAD && after.summary.step === finalStep
        ? true
        : undefined;
    });
    await shot(page, "layer-updated");

    assert.deepEqual(browser!.errors, [], "no console or page errors");
  });
});
