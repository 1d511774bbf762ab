/**
 * The JSON and binary API under /api (docs/api.md): runs, layer summaries,
 * a layer's units (filtered, sorted, paged), one unit with its transitions,
 * and the layer map in the compact binary form of src/ui/map-format.ts.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type {
  DetectorConfig,
  LayerSummary,
  LoggedTransition,
  UnitColumns,
  UnitDetail,
  UnitState,
} from "../../core/index.js";
import { encodeLayerMap } from "../../ui/map-format.js";
import { ApiError, sendBody, sendJson } from "./respond.js";
import { applyUnitsQuery, parseUnitsQuery } from "./units-query.js";

export interface ApiSource {
  readonly config: DetectorConfig;
  /** Samples a dead verdict needs. */
  readonly samplesNeeded: number;
  summaries(): LayerSummary[];
  /** Every tracked (run, layer), without computing summaries. */
  layerIds(): Array<{ run_id: string; layer: string }>;
  summary(run_id: string, layer: string): LayerSummary | undefined;
  units(run_id: string, layer: string): UnitDetail[] | undefined;
  unit(run_id: string, layer: string, unit: number): UnitDetail | undefined;
  unitColumns(run_id: string, layer: string): UnitColumns | undefined;
  transitionsOf(
    run_id: string,
    layer: string,
    unit: number | undefined,
    limit: number,
  ): LoggedTransition[] | undefined;
  layerVersion(run_id: string, layer: string): number | undefined;
}

/** Transitions a unit page lists, newest first. */
const UNIT_TRANSITIONS = 100;
const LAYER_TRANSITIONS_DEFAULT = 50;
const LAYER_TRANSITIONS_MAX = 10_000;

/** What follows /layers/{layer}: the layer itself, its map, its transitions, or one unit. */
type LayerView =
  | { kind: "layer" }
  | { kind: "map" }
  | { kind: "transitions" }
  | { kind: "unit"; unit: number };

/**
 * Splits a layer path into layer name and view. A layer name may contain "/",
 * so a tracked layer of the whole tail wins; only otherwise is a trailing
 * `/map`, `/transitions` or `/units/{n}` read as a view of the layer before it.
 */
function resolveLayer(tracked: ReadonlySet<string>, tail: string[]): { layer: string; view: LayerView } {
  const whole = tail.join("/");
  if (tracked.has(whole)) return { layer: whole, view: { kind: "layer" } };
  const last = tail[tail.length - 1];
  if (tail.length >= 2 && last === "map")
    return { layer: tail.slice(0, -1).join("/"), view: { kind: "map" } };
  if (tail.length >= 2 && last === "transitions") {
    return { layer: tail.slice(0, -1).join("/"), view: { kind: "transitions" } };
  }
  if (tail.length >= 3 && tail[tail.length - 2] === "units" && /^\d{1,10}$/.test(last!)) {
    return { layer: tail.slice(0, -2).join("/"), view: { kind: "unit", unit: Number(last) } };
  }
  return { layer: whole, view: { kind: "layer" } };
}

/** Percent-decodes path segments; a malformed escape is the client's error, not the server's. */
export function decodeSegments(path: string): string[] {
  return path
    .split("/")
    .slice(1)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw new ApiError("bad_request", `malformed %-escape in path segment ${JSON.stringify(segment)}`);
      }
    });
}

export async function routeApi(
  api: ApiSource,
  req: IncomingMessage,
  res: ServerResponse,
  parts: string[],
  query: URLSearchParams,
): Promise<void> {
  if (parts[0] !== "api" || parts[1] !== "runs")
    throw new ApiError("not_found", `no route for /${parts.join("/")}`);
  if (parts.length === 2) {
    sendJson(res, 200, { runs: listRuns(api.summaries()) });
    return;
  }
  const run = parts[2]!;
  // Names first, summaries only of what is asked: a summary is a pass over the layer's units.
  const tracked = new Set(api.layerIds().flatMap((id) => (id.run_id === run ? [id.layer] : [])));
  if (tracked.size === 0) {
    throw new ApiError("run_not_found", `run ${JSON.stringify(run)} is not tracked by this instance`);
  }
  if (parts.length === 4 && parts[3] === "layers") {
    const layers = [...tracked].sort((a, b) => a.localeCompare(b)).flatMap((l) => api.summary(run, l) ?? []);
    sendJson(res, 200, { run_id: run, layers });
    return;
  }
  if (parts.length < 5 || parts[3] !== "layers") {
    throw new ApiError("not_found", `no route for /${parts.join("/")}`);
  }
  const { layer, view } = resolveLayer(tracked, parts.slice(4));
  const summary = api.summary(run, layer);
  if (summary === undefined) {
    throw new ApiError(
      "layer_not_found",
      `layer ${JSON.stringify(layer)} of run ${JSON.stringify(run)} is not tracked`,
    );
  }
  switch (view.kind) {
    case "layer": {
      const q = parseUnitsQuery(query);
      // The explorer's refresh asks for the summary alone: count from it rather than build every unit.
      const page =
        q.limit === 0 && q.bornDead === undefined && q.constant === undefined
          ? { total: countByState(summary, q.states), offset: q.offset, limit: 0, units: [] }
          : applyUnitsQuery(api.units(run, layer) ?? [], q);
      sendJson(res, 200, { summary, confidence: 1 - api.config.alpha, ...page });
      return;
    }
    case "map": {
      const columns = api.unitColumns(run, layer)!;
      // The version changes with every snapshot applied; the snapshot time tells a re-created layer apart.
      const etag = `"${api.layerVersion(run, layer)}-${summary.last_snapshot_ms}-${summary.layer_units}"`;
      const body = encodeLayerMap({ units: summary.layer_units, step: summary.step, ...columns });
      await sendBody(
        req,
        res,
        body,
        { "content-type": "application/octet-stream", "cache-control": "no-cache" },
        etag,
      );
      return;
    }
    case "transitions": {
      const limit = Math.min(
        boundedCount(query, "limit") ?? LAYER_TRANSITIONS_DEFAULT,
        LAYER_TRANSITIONS_MAX,
      );
      sendJson(res, 200, {
        run_id: run,
        layer,
        transitions: api.transitionsOf(run, layer, undefined, limit) ?? [],
      });
      return;
    }
    case "unit": {
      const unit = api.unit(run, layer, view.unit);
      if (unit === undefined) {
        throw new ApiError(
          "unit_not_found",
          `layer ${JSON.stringify(layer)} has ${summary.layer_units} units; no unit ${view.unit}`,
        );
      }
      sendJson(res, 200, {
        run_id: run,
        layer,
        step: summary.step,
        confidence: 1 - api.config.alpha,
        dead_rate: api.config.dead_rate,
        silent_rate: api.config.silent_rate,
        samples_needed: api.samplesNeeded,
        effective_sample_fraction: api.config.effective_sample_fraction,
        unit,
        transitions: api.transitionsOf(run, layer, view.unit, UNIT_TRANSITIONS) ?? [],
      });
      return;
    }
  }
}

function countByState(summary: LayerSummary, states: ReadonlySet<UnitState> | undefined): number {
  if (states === undefined) return summary.layer_units;
  let n = 0;
  for (const s of states) n += summary.units_by_state[s];
  return n;
}

function boundedCount(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new ApiError("bad_request", `${name}=${v}: must be a whole number`);
  return Number(v);
}

function listRuns(summaries: LayerSummary[]) {
  const runs = new Map<
    string,
    { run_id: string; layers: number; units: number; dead: number; step: number }
  >();
  for (const s of summaries) {
    const r = runs.get(s.run_id) ?? { run_id: s.run_id, layers: 0, units: 0, dead: 0, step: 0 };
    r.layers++;
    r.units += s.layer_units;
    r.dead += s.units_by_state.DEAD;
    r.step = Math.max(r.step, s.step);
    runs.set(s.run_id, r);
  }
  return [...runs.values()].sort((a, b) => a.run_id.localeCompare(b.run_id));
}
