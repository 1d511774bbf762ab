/**
 * Filtering, sorting and paging of a layer's units for
 * GET /api/runs/{run}/layers/{layer}:
 *
 *   ?state=dead,mostly_silent&sort=-firing_rate&limit=50&offset=100
 *
 * keeps dead and mostly-silent units, highest rate first (ties by unit), and
 * returns the 101st to 150th of them. Without limit every matching unit is returned.
 */
import type { UnitDetail, UnitState } from "../../core/index.js";
import { ApiError } from "./respond.js";

export const UNIT_SORT_KEYS = [
  "unit",
  "state",
  "firing_rate",
  "rate_upper_bound",
  "fires",
  "n_silent",
  "last_fire_step",
  "dormancy",
] as const;
type SortKey = (typeof UNIT_SORT_KEYS)[number];

const STATES: readonly UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];

export interface UnitsQuery {
  states: ReadonlySet<UnitState> | undefined;
  bornDead: boolean | undefined;
  constant: boolean | undefined;
  sort: SortKey;
  descending: boolean;
  offset: number;
  limit: number | undefined;
}

const KNOWN_PARAMS = new Set(["state", "born_dead", "constant", "sort", "offset", "limit"]);

/** Throws ApiError("bad_request") naming the parameter at fault. */
export function parseUnitsQuery(params: URLSearchParams): UnitsQuery {
  for (const key of params.keys()) {
    if (!KNOWN_PARAMS.has(key)) {
      throw new ApiError("bad_request", `unknown parameter ${key}; known: ${[...KNOWN_PARAMS].join(", ")}`);
    }
  }
  let states: Set<UnitState> | undefined;
  const stateParam = params.get("state");
  if (stateParam !== null) {
    states = new Set();
    for (const raw of stateParam.split(",")) {
      const state = raw.trim().toUpperCase() as UnitState;
      if (!STATES.includes(state)) {
        throw new ApiError("bad_request", `state=${raw}: must be one of ${STATES.join(", ")} (any case)`);
      }
      states.add(state);
    }
  }
  const sortParam = params.get("sort") ?? "unit";
  const descending = sortParam.startsWith("-");
  const sort = (descending ? sortParam.slice(1) : sortParam) as SortKey;
  if (!UNIT_SORT_KEYS.includes(sort)) {
    throw new ApiError(
      "bad_request",
      `sort=${sortParam}: must be one of ${UNIT_SORT_KEYS.join(", ")}, - for descending`,
    );
  }
  return {
    states,
    bornDead: parseBool(params, "born_dead"),
    constant: parseBool(params, "constant"),
    sort,
    descending,
    offset: parseCount(params, "offset") ?? 0,
    limit: parseCount(params, "limit"),
  };
}

function parseBool(params: URLSearchParams, name: string): boolean | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ApiError("bad_request", `${name}=${v}: must be true or false`);
}

function parseCount(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new ApiError("bad_request", `${name}=${v}: must be a whole number`);
  return Number(v);
}

/** Sort value of a unit; null (no fire seen, no dormancy) sorts before every number. */
function keyOf(u: UnitDetail, key: SortKey): number {
  switch (key) {
    case "state":
      return STATES.indexOf(u.state);
    case "last_fire_step":
      return u.last_fire_step ?? Number.NEGATIVE_INFINITY;
    case "dormancy":
      return u.dormancy ?? Number.NEGATIVE_INFINITY;
    default:
      return u[key];
  }
}

export interface UnitsPage {
  total: number;
  offset: number;
  limit: number | null;
  units: UnitDetail[];
}

export function applyUnitsQuery(units: readonly UnitDetail[], q: UnitsQuery): UnitsPage {
  const kept = units.filter(
    (u) =>
      (q.states === undefined || q.states.has(u.state)) &&
      (q.bornDead === undefined || u.born_dead === q.bornDead) &&
      (q.constant === undefined || u.constant === q.constant),
  );
  if (q.sort !== "unit" || q.descending) {
    const sign = q.descending ? -1 : 1;
    kept.sort((a, b) => sign * (keyOf(a, q.sort) - keyOf(b, q.sort)) || a.unit - b.unit);
  }
  const end = q.limit === undefined ? kept.length : q.offset + q.limit;
  return { total: kept.length, offset: q.offset, limit: q.limit ?? null, units: kept.slice(q.offset, end) };
}
