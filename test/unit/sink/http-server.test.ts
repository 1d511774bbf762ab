import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Detector } from "../../../src/core/index.js";
import { packageRoot } from "../../../src/paths.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { API_ERROR_CODES, HttpServer } from "../../../src/sink/http-server.js";
import { Exporter } from "../../../src/sink/prometheus.js";

describe("HTTP API", () => {
  const detector = new Detector();
  const scenario = resolveScenario("lr-spike", { seed: 3 });
  for (const s of generateFleet(scenario)) detector.apply(s, s.time);
  const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 10, processMetrics: false });
  let notReady: string | undefined = "rebuilding windows";
  const server = new HttpServer({
    host: "127.0.0.1",
    port: 0,
    api: detector,
    metrics: () => exporter.metrics(),
    metricsContentType: exporter.contentType,
    notReadyReason: () => notReady,
  });
  let base = "";
  before(async () => {
    const address = await server.start();
    base = `http://127.0.0.1:${address.port}`;
  });
  after(() => server.stop());

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${base}${path}`, init);
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
  };

  test("/healthz is always up; /readyz follows the source's readiness and says why not", async () => {
    assert.equal((await get("/healthz")).status, 200);
    const notReadyRes = await get("/readyz");
    assert.equal(notReadyRes.status, 503);
    assert.deepEqual(JSON.parse(notReadyRes.body), { status: "not_ready", reason: "rebuilding windows" });
    notReady = undefined;
    assert.equal((await get("/readyz")).status, 200);
  });

  test("/metrics serves the exposition format", async () => {
    const res = await get("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain/);
    assert.match(res.body, /^# HELP reluwatch_layer_units /m);
  });

  test("/api/runs lists runs with totals that add up to the layer summaries", async () => {
    const { runs } = JSON.parse((await get("/api/runs")).body);
    const summaries = detector.summaries();
    assert.equal(runs.length, new Set(summaries.map((s) => s.run_id)).size);
    const run = runs[0];
    const mine = summaries.filter((s) => s.run_id === run.run_id);
    assert.equal(run.layers, mine.length);
    assert.equal(
      run.dead,
      mine.reduce((n, s) => n + s.units_by_state.DEAD, 0),
    );
    assert.ok(run.dead > 0, "the lr-spike scenario has dead units");
  });

  test("/api/runs/{run}/layers and /api/runs/{run}/layers/{layer} give summaries and every unit", async () => {
    const s = detector.summaries()[0]!;
    const layers = JSON.parse((await get(`/api/runs/${encodeURIComponent(s.run_id)}/layers`)).body);
    assert.equal(layers.run_id, s.run_id);
    assert.ok(layers.layers.some((l: { layer: string }) => l.layer === s.layer));
    const detail = JSON.parse(
      (await get(`/api/runs/${encodeURIComponent(s.run_id)}/layers/${encodeURIComponent(s.layer)}`)).body,
    );
    assert.equal(detail.units.length, s.layer_units);
    const states = detail.units.reduce((m: Record<string, number>, u: { state: string }) => {
      m[u.state] = (m[u.state] ?? 0) + 1;
      return m;
    }, {});
    for (const [state, n] of Object.entries(s.units_by_state)) assert.equal(states[state] ?? 0, n, state);
    const unit = detail.units[0];
    for (const field of [
      "unit",
      "state",
      "firing_rate",
      "rate_upper_bound",
      "fires",
      "samples",
      "last_fire_step",
      "born_dead",
    ]) {
      assert.ok(field in unit, `unit detail has ${field}`);
    }
  });

  test("errors carry stable codes and the right status", async () => {
    const cases: Array<[string, number, string, RequestInit?]> = [
      ["/nope", 404, "not_found"],
      ["/api/runs/no-such-run/layers", 404, "run_not_found"],
      [
        `/api/runs/${encodeURIComponent(detector.summaries()[0]!.run_id)}/layers/no.such.layer`,
        404,
        "layer_not_found",
      ],
      ["/api/runs", 405, "method_not_allowed", { method: "POST" }],
    ];
    for (const [path, status, code, init] of cases) {
      const res = await get(path, init);
      assert.equal(res.status, status, path);
      assert.equal(JSON.parse(res.body).error.code, code, path);
    }
  });

  test("every API error code is documented in docs/api.md, and only those", () => {
    const doc = readFileSync(join(packageRoot, "docs/api.md"), "utf8");
    const documented = new Set([...doc.matchAll(/^\| `([a-z_]+)` \| \d{3} \|/gm)].map((m) => m[1]));
    assert.deepEqual(documented, new Set(API_ERROR_CODES));
  });
});
