/** The explorer's view of the reluwatch API (docs/api.md); paths are relative to /ui/. */
import { decodeLayerMap, type LayerMap } from "../map-format.js";

export type UnitState = "UNKNOWN" | "ACTIVE" | "MOSTLY_SILENT" | "DEAD";
export const STATES: readonly UnitState[] = ["ACTIVE", "MOSTLY_SILENT", "DEAD", "UNKNOWN"];

export interface RunRow {
  run_id: string;
  layers: number;
  units: number;
  dead: number;
  step: number;
}

export interface LayerSummary {
  run_id: string;
  layer: string;
  layer_units: number;
  units_by_state: Record<UnitState, number>;
  constant_units: number;
  dead_ratio: number;
  born_dead_units: number;
  deaths_total: number;
  revivals_total: number;
  step: number;
  window_samples: number;
  ranks: Array<{ rank: number; newest_step: number; stale: boolean }>;
  stale_ranks: number;
  nonfinite_values_total: number;
  last_snapshot_ms: number;
}

export interface UnitDetail {
  unit: number;
  state: UnitState;
  constant: boolean;
  firing_rate: number;
  rate_upper_bound: number;
  fires: number;
  samples: number;
  n_silent: number;
  last_fire_step: number | null;
  born_dead: boolean;
  dormancy: number | null;
}

export interface Transition {
  unit: number;
  from: UnitState;
  to: UnitState;
  born_dead: boolean;
  step: number;
  firing_rate: number;
  rate_upper_bound: number;
}

export interface UnitPage {
  run_id: string;
  layer: string;
  step: number;
  confidence: number;
  dead_rate: number;
  silent_rate: number;
  samples_needed: number;
  effective_sample_fraction: number;
  unit: UnitDetail;
  transitions: Transition[];
}

/** An API answer other than 2xx, with the API's error code and message. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function seg(s: string): string {
  return encodeURIComponent(s);
}

function layerPath(run: string, layer: string): string {
  return `../api/runs/${seg(run)}/layers/${layer.split("/").map(seg).join("/")}`;
}

async function get(path: string): Promise<Response> {
  const res = await fetch(path, { cache: "no-cache", credentials: "same-origin" });
  if (!res.ok) {
    let code = "http_error";
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not a JSON error body: keep the status line
    }
    throw new ApiFailure(res.status, code, message);
  }
  return res;
}

export async function fetchRuns(): Promise<RunRow[]> {
  return (await (await get("../api/runs")).json()).runs;
}

export async function fetchLayers(run: string): Promise<LayerSummary[]> {
  return (await (await get(`../api/runs/${seg(run)}/layers`)).json()).layers;
}

export async function fetchLayer(
  run: string,
  layer: string,
): Promise<{ summary: LayerSummary; confidence: number }> {
  // limit=0: the summary alone, not the units (the map carries those).
  return (await get(`${layerPath(run, layer)}?limit=0`)).json();
}

export async function fetchMap(run: string, layer: string): Promise<LayerMap> {
  return decodeLayerMap(await (await get(`${layerPath(run, layer)}/map`)).arrayBuffer());
}

export async function fetchTransitions(run: string, layer: string, limit: number): Promise<Transition[]> {
  return (await (await get(`${layerPath(run, layer)}/transitions?limit=${limit}`)).json()).transitions;
}

export async function fetchUnit(run: string, layer: string, unit: number): Promise<UnitPage> {
  return (await get(`${layerPath(run, layer)}/units/${unit}`)).json();
}
