/**
 * The unit explorer's layer map at 65,536 units: time from navigation to the
 * map's first draw in headless chromium, and the bytes the page transfers
 * (HTML, script, style, the layer JSON and the binary map). The layer comes
 * from the simulator (2% born dead, 30% dying at step 500) through an
 * in-process detector and the real HTTP server; each run is a cold load in a
 * fresh page with the browser cache disabled. Prints one JSON document.
 *
 *   npx tsx bench/ui.ts [--units 65536] [--runs 5]
 */
import { parseArgs } from "node:util";
import { Detector } from "../src/core/index.js";
import { generateFleet, resolveScenario } from "../src/sim/index.js";
import { HttpServer } from "../src/sink/http-server.js";
import { Exporter } from "../src/sink/prometheus.js";
import { mapByteLength } from "../src/ui/map-format.js";
import { launchBrowser } from "../test/support/browser.js";
import { figure } from "./lib/stats.js";

const { values } = parseArgs({
  options: { units: { type: "string", default: "65536" }, runs: { type: "string", default: "5" } },
});
const units = Number(values.units);
const runs = Number(values.runs);
const MARK = "reluwatch:layer-map-drawn";

const scenario = resolveScenario("lr-spike", {
  seed: 1,
  runs: 1,
  layers: 1,
  ranks: 1,
  units,
  steps: 1500,
  born_dead: 0.02,
  deaths: [{ layer: 0, fraction: 0.3, step: 500 }],
});
const detector = new Detector();
for (const s of generateFleet(scenario)) detector.apply(s, s.time);
const summary = detector.summaries()[0]!;
const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 1, processMetrics: false });
const server = new HttpServer({
  host: "127.0.0.1",
  port: 0,
  api: detector,
  metrics: () => exporter.metrics(),
  metricsContentType: exporter.contentType,
  notReadyReason: () => undefined,
});
const { port } = await server.start();
const url = `http://127.0.0.1:${port}/ui/layer?run=${encodeURIComponent(summary.run_id)}&layer=${encodeURIComponent(summary.layer)}`;

const browser = await launchBrowser();
const firstDraw: number[] = [];
const totalBytes: number[] = [];
const mapBytes: number[] = [];
try {
  // One warm-up load: the server bundles the explorer on its first request when run from source.
  for (let i = 0; i <= runs; i++) {
    const page = await browser.newPage();
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    // Bytes on the wire per request (headers and compressed body), as the browser's network panel counts them.
    const wire = new Map<string, number>();
    const urls = new Map<string, string>();
    cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
    cdp.on("Network.loadingFinished", (e) => wire.set(e.requestId, e.encodedDataLength));
    await page.goto(url);
    // A function, not a string: the explorer's CSP forbids evaluating strings in the page.
    await page.waitForFunction((mark) => performance.getEntriesByName(mark).length > 0, MARK, {
      timeout: 120_000,
    });
    const drawn = await page.evaluate((mark) => performance.getEntriesByName(mark)[0]!.startTime, MARK);
    const cells = await page.getAttribute("canvas[data-testid=layer-map]", "data-cells");
    if (Number(cells) !== units) throw new Error(`the map drew ${cells} cells, not ${units}`);
    // The first refresh's requests have all finished once the map is drawn; let their loadingFinished arrive.
    await page.waitForTimeout(200);
    let total = 0;
    let map = 0;
    for (const [id, bytes] of wire) {
      total += bytes;
      if (urls.get(id)?.endsWith("/map")) map = bytes;
    }
    if (i > 0) {
      firstDraw.push(drawn);
      totalBytes.push(total);
      mapBytes.push(map);
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
if (browser.errors.length > 0) throw new Error(`page errors: ${browser.errors.join("; ")}`);

console.log(
  JSON.stringify(
    {
      units,
      dead: summary.units_by_state.DEAD,
      born_dead: summary.born_dead_units,
      viewport: "1200x900",
      first_map_draw_ms: figure(firstDraw),
      page_bytes_transferred: figure(totalBytes),
      map_bytes_transferred: figure(mapBytes),
      map_bytes_uncompressed: mapByteLength(units),
    },
    null,
    2,
  ),
);
