import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Detector } from "../../../src/core/index.js";
import { packageRoot } from "../../../src/paths.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { API_ERROR_CODES, HttpServer } from "../../../src/sink/http-server.js";
import { Exporter } from "../../../src/sink/prometheus.js";
import { decodeLayerMap, MAP_STATES } from "../../../src/ui/map-format.js";

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

  const firstLayer = () => {
    const summaries = detector.summaries().sort((a, b) => b.units_by_state.DEAD - a.units_by_state.DEAD);
    return summaries[0]!;
  };
  const layerPath = () => {
    const s = firstLayer();
    return `/api/runs/${encodeURIComponent(s.run_id)}/layers/${encodeURIComponent(s.layer)}`;
  };

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
      ["/api/runs/%E0%A4%A/layers", 400, "bad_request"],
      ["/api/runs/%zz", 400, "bad_request"],
      [`${layerPath()}?state=zombie`, 400, "bad_request"],
      [`${layerPath()}?sort=colour`, 400, "bad_request"],
      [`${layerPath()}?limit=-1`, 400, "bad_request"],
      [`${layerPath()}?page=2`, 400, "bad_request"],
      [`${layerPath()}/units/999999`, 404, "unit_not_found"],
    ];
    for (const [path, status, code, init] of cases) {
      const res = await get(path, init);
      assert.equal(res.status, status, path);
      assert.equal(JSON.parse(res.body).error.code, code, path);
    }
  });

  test("units filter by state and flags, sort, and page; the pages add up to the filtered whole", async () => {
    const s = firstLayer();
    const all = detector.units(s.run_id, s.layer)!;
    const dead = all.filter((u) => u.state === "DEAD");
    assert.ok(dead.length > 2, "the lr-spike scenario kills several units of this layer");
    const page1 = JSON.parse((await get(`${layerPath()}?state=dead&sort=-last_fire_step&limit=2`)).body);
    assert.equal(page1.total, dead.length);
    assert.equal(page1.limit, 2);
    assert.equal(page1.units.length, 2);
    const rest = JSON.parse((await get(`${layerPath()}?state=DEAD&sort=-last_fire_step&offset=2`)).body);
    const got = [...page1.units, ...rest.units];
    assert.deepEqual(new Set(got.map((u: { unit: number }) => u.unit)), new Set(dead.map((u) => u.unit)));
    const steps = got.map((u: { last_fire_step: number | null }) => u.last_fire_step ?? -1);
    assert.deepEqual(
      steps,
      [...steps].sort((a, b) => b - a),
      "descending by last fire step",
    );
    const living = JSON.parse((await get(`${layerPath()}?state=active,mostly_silent&sort=firing_rate`)).body);
    assert.equal(living.total, s.units_by_state.ACTIVE + s.units_by_state.MOSTLY_SILENT);
    const rates = living.units.map((u: { firing_rate: number }) => u.firing_rate);
    assert.deepEqual(
      rates,
      [...rates].sort((a, b) => a - b),
    );
    const deadCount = JSON.parse((await get(`${layerPath()}?state=dead,unknown&limit=0`)).body);
    assert.equal(deadCount.total, s.units_by_state.DEAD + s.units_by_state.UNKNOWN);
    assert.deepEqual(deadCount.units, []);
    const born = JSON.parse((await get(`${layerPath()}?born_dead=true&limit=0`)).body);
    assert.equal(born.total, s.born_dead_units);
    assert.equal(born.units.length, 0);
  });

  test("the map endpoint carries every unit's state, flags, rate and bound in 16 + 9 bytes a unit", async () => {
    const s = firstLayer();
    const res = await fetch(`${base}${layerPath()}/map`, { headers: { "accept-encoding": "identity" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    const body = await res.arrayBuffer();
    assert.equal(body.byteLength, 16 + 9 * s.layer_units);
    const map = decodeLayerMap(body);
    assert.equal(map.units, s.layer_units);
    assert.equal(map.step, s.step);
    for (const u of detector.units(s.run_id, s.layer)!) {
      assert.equal(MAP_STATES[map.flags[u.unit]! & 3], u.state, `unit ${u.unit} state`);
      assert.equal((map.flags[u.unit]! & 8) !== 0, u.born_dead, `unit ${u.unit} born dead`);
      assert.equal((map.flags[u.unit]! & 4) !== 0, u.constant, `unit ${u.unit} constant`);
      assert.equal(map.firing_rate[u.unit], Math.fround(u.firing_rate));
      assert.equal(map.rate_upper_bound[u.unit], Math.fround(u.rate_upper_bound));
    }
    // Unchanged layer: the validator answers 304 without a body; gzip is offered when accepted.
    const etag = res.headers.get("etag")!;
    const again = await fetch(`${base}${layerPath()}/map`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    const raw = await new Promise<{ encoding?: string; bytes: number }>((resolve, reject) => {
      import("node:http").then(({ get: httpGet }) =>
        httpGet(`${base}${layerPath()}/map`, { headers: { "accept-encoding": "gzip" } }, (r) => {
          let bytes = 0;
          r.on("data", (c: Buffer) => {
            bytes += c.length;
          });
          r.on("end", () => resolve({ encoding: r.headers["content-encoding"], bytes }));
        }).on("error", reject),
      );
    });
    assert.equal(raw.encoding, "gzip");
    assert.ok(raw.bytes < body.byteLength, "gzip makes the map smaller");
  });

  test("a unit's page data: its detail, the verdict's confidence and the transitions this instance saw", async () => {
    const s = firstLayer();
    const dead = detector.units(s.run_id, s.layer)!.find((u) => u.state === "DEAD" && !u.born_dead)!;
    const page = JSON.parse((await get(`${layerPath()}/units/${dead.unit}`)).body);
    assert.deepEqual(page.unit, dead);
    assert.equal(page.confidence, 1 - detector.config.alpha);
    assert.equal(page.samples_needed, detector.samplesNeeded);
    const death = page.transitions.find((t: { to: string }) => t.to === "DEAD");
    assert.ok(death, "the death is logged");
    assert.ok(death.step > (dead.last_fire_step ?? -1), "the death comes after the last fire");
    assert.ok(death.rate_upper_bound < detector.config.dead_rate);
    const layerLog = JSON.parse((await get(`${layerPath()}/transitions?limit=5`)).body);
    assert.equal(layerLog.transitions.length, 5);
  });

  test("/ui serves the explorer's page, script and style; /ui redirects to /ui/", async () => {
    const redirect = await fetch(`${base}/ui`, { redirect: "manual" });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get("location"), "ui/");
    const page = await get("/ui/layer?run=x&layer=y");
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /<script src="app.js">/);
    const js = await get("/ui/app.js");
    assert.match(js.type, /^text\/javascript/);
    assert.ok(js.body.length > 1000);
    assert.match((await get("/ui/app.css")).type, /^text\/css/);
  });

  test("every API error code is documented in docs/api.md, and only those", () => {
    const doc = readFileSync(join(packageRoot, "docs/api.md"), "utf8");
    const documented = new Set([...doc.matchAll(/^\| `([a-z_]+)` \| \d{3} \|/gm)].map((m) => m[1]));
    assert.deepEqual(documented, new Set(API_ERROR_CODES));
  });
});

describe("HTTP API with a bearer token", () => {
  const detector = new Detector();
  for (const s of generateFleet(resolveScenario("born-dead", { seed: 4 }))) detector.apply(s, s.time);
  const server = new HttpServer({
    host: "127.0.0.1",
    port: 0,
    api: detector,
    metrics: async () => "# nothing\n",
    metricsContentType: "text/plain",
    notReadyReason: () => undefined,
    token: "s3cret-token",
  });
  let base = "";
  before(async () => {
    base = `http://127.0.0.1:${(await server.start()).port}`;
  });
  after(() => server.stop());

  test("/api and /ui need the token; /metrics and the probes stay open", async () => {
    for (const path of ["/api/runs", "/ui/", "/ui/app.js"]) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "unauthorized");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
      const wrong = await fetch(`${base}${path}`, { headers: { authorization: "Bearer s3cret-tokem" } });
      assert.equal(wrong.status, 401, `${path} with a wrong token`);
      const right = await fetch(`${base}${path}`, { headers: { authorization: "Bearer s3cret-token" } });
      assert.equal(right.status, 200, `${path} with the token`);
    }
    for (const path of ["/metrics", "/healthz", "/readyz"])
      assert.equal((await fetch(`${base}${path}`)).status, 200);
  });

  test("a browser link with ?token= gets a cookie and the page without the token; the cookie opens the API", async () => {
    const res = await fetch(`${base}/ui/layer?run=a&token=s3cret-token&layer=b`, { redirect: "manual" });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "layer?run=a&layer=b");
    const cookie = res.headers.get("set-cookie")!;
    assert.match(cookie, /HttpOnly/);
    const pair = cookie.split(";")[0]!;
    assert.equal((await fetch(`${base}/api/runs`, { headers: { cookie: pair } })).status, 200);
    const wrong = await fetch(`${base}/ui/?token=nope`, { redirect: "manual" });
    assert.equal(wrong.status, 401);
  });
});
