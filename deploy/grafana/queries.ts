/**
 * Every PromQL expression the dashboards' panels run, with template variables
 * replaced by concrete values, so a test can run each one against a live
 * Prometheus and fail when a panel points at a series that does not exist.
 */
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { DASHBOARDS } from "./dashboards.js";

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** The expression as written in the dashboard. */
  template: string;
  /** The expression with every variable substituted. */
  expr: string;
  /** Reads a series the exporter only exposes when per-unit metrics are turned on. */
  optIn: boolean;
}

export interface QueryVariables {
  run: string;
  layer: string;
  /** Stands in for Grafana's $__rate_interval; pick at least four scrape intervals. */
  rateInterval?: string;
  /** Stands in for $__interval. */
  interval?: string;
  /** Stands in for $__range. */
  range?: string;
}

export class UnresolvedVariableError extends Error {
  constructor(
    readonly expr: string,
    readonly variable: string,
  ) {
    super(`query still holds variable ${variable} after substitution: ${expr}`);
    this.name = "UnresolvedVariableError";
  }
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** Replaces $name and ${name} forms; throws when a $variable is left over. */
export function substituteVariables(template: string, vars: QueryVariables): string {
  const values: Record<string, string> = {
    run: escapeLabelValue(vars.run),
    layer: escapeLabelValue(vars.layer),
    __rate_interval: vars.rateInterval ?? "1m",
    __interval: vars.interval ?? "15s",
    __range: vars.range ?? "5m",
  };
  // `$1` and the like are label_replace capture references, not Grafana variables.
  const expr = template.replace(/\$\{(\w+)\}|\$([A-Za-z_]\w*)/g, (whole, braced: string, bare: string) => {
    const name = braced ?? bare;
    return values[name] ?? whole;
  });
  const left = /\$\{?[A-Za-z_]\w*/.exec(expr);
  if (left) throw new UnresolvedVariableError(expr, left[0]);
  return expr;
}

interface PanelLike {
  title?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: PanelLike[];
}

function collect(dashboard: Dashboard, name: string, vars: QueryVariables): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (panels: PanelLike[]) => {
    for (const panel of panels) {
      if (panel.panels) walk(panel.panels);
      for (const target of panel.targets ?? []) {
        if (!target.expr) continue;
        out.push({
          dashboard: name,
          panel: panel.title ?? "(untitled)",
          refId: target.refId ?? "A",
          template: target.expr,
          expr: substituteVariables(target.expr, vars),
          optIn: target.expr.includes("reluwatch_unit_firing_rate"),
        });
      }
    }
  };
  walk((dashboard.panels ?? []) as PanelLike[]);
  return out;
}

/** Every panel query of every dashboard, for the given run and layer. */
export function dashboardQueries(vars: QueryVariables): PanelQuery[] {
  return Object.entries(DASHBOARDS).flatMap(([path, build]) => collect(build(), path, vars));
}

export interface VariableQuery {
  dashboard: string;
  variable: string;
  /** The variable's label_values(...) definition. */
  template: string;
  /** An equivalent PromQL query: one series per value the variable offers. */
  expr: string;
}

interface VariableLike {
  name: string;
  type: string;
  query?: unknown;
}

/**
 * The dashboards' query variables as PromQL (`label_values(sel, l)` becomes
 * `count by (l) (sel)`), with the other variables substituted, so a test can
 * check every drop-down offers values.
 */
export function variableQueries(vars: QueryVariables): VariableQuery[] {
  return Object.entries(DASHBOARDS).flatMap(([path, build]) => {
    const list = ((build() as { templating?: { list?: VariableLike[] } }).templating?.list ?? []).filter(
      (v) => v.type === "query" && typeof v.query === "string",
    );
    return list.map((v) => {
      const template = v.query as string;
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(template);
      if (!m) throw new Error(`${path}: variable ${v.name} is not a label_values(selector, label) query`);
      return {
        dashboard: path,
        variable: v.name,
        template,
        expr: substituteVariables(`count by (${m[2]}) (${m[1]})`, vars),
      };
    });
  });
}
