/**
 * The explorer behind a bearer token, in chromium: a link carrying the token
 * once opens it (the token moves into a cookie and out of the address), and
 * the page's own API calls are then let through. An in-process detector fed
 * by the simulator stands in for the consumer; no broker is involved.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Detector } from "../../../src/core/index.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { HttpServer } from "../../../src/sink/http-server.js";
import { launchBrowser, type TestBrowser } from "../../support/browser.js";

describe("the explorer with http_token_file set", () => {
  const detector = new Detector();
  for (const s of generateFleet(resolveScenario("born-dead", { seed: 2, units: 64 })))
    detector.apply(s, s.time);
  const server = new HttpServer({
    host: "127.0.0.1",
    port: 0,
    api: detector,
    metrics: async () => "",
    metricsContentType: "text/plain",
    notReadyReason: () => undefined,
    token: "tok-3f9a",
  });
  let base = "";
  let browser: TestBrowser | undefined;
  before(async () => {
    base = `http://127.0.0.1:${(await server.start()).port}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server.stop();
  });

  it("opens from a link with ?token= and shows the runs, the token gone from the address", async () => {
    assert.equal((await fetch(`${base}/ui/`)).status, 401);
    const page = await browser!.newPage();
    await page.goto(`${base}/ui/?token=tok-3f9a`);
    await page.waitForSelector("[data-testid=runs] [data-testid=run-dead]");
    assert.equal(page.url(), `${base}/ui/`);
    const dead = detector.summaries().reduce((n, s) => n + s.units_by_state.DEAD, 0);
    assert.ok(dead > 0);
    assert.equal(Number((await page.textContent("[data-testid=run-dead]"))?.replace(/,/g, "")), dead);
    assert.deepEqual(browser!.errors, []);
  });
});
