/**
 * Renders samples in Prometheus' text exposition format, with HELP and TYPE
 * taken from the metric contract, so a test can serve what the exporter would.
 */
import { METRICS } from "../../deploy/metrics-contract.js";

export interface Sample {
  /** Series name; for a histogram, with its _bucket/_sum/_count suffix. */
  name: string;
  labels?: Record<string, string>;
  value: number;
}

export class UnknownMetricError extends Error {
  constructor(readonly metric: string) {
    super(`${metric} is not in the metric contract`);
    this.name = "UnknownMetricError";
  }
}

function family(name: string) {
  const found =
    METRICS.find((m) => m.name === name) ??
    METRICS.find(
      (m) => m.type === "histogram" && /_(bucket|sum|count)$/.test(name) && name.startsWith(m.name),
    );
  if (!found) throw new UnknownMetricError(name);
  return found;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

export function renderExposition(samples: Sample[]): string {
  const byFamily = new Map<string, Sample[]>();
  for (const s of samples) {
    const f = family(s.name).name;
    byFamily.set(f, [...(byFamily.get(f) ?? []), s]);
  }
  const lines: string[] = [];
  for (const [name, members] of byFamily) {
    const f = family(name);
    lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    for (const s of members) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
        .join(",");
      lines.push(`${s.name}${labels ? `{${labels}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
