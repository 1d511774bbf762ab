/**
 * Renders the Prometheus Operator's PrometheusRule for the kustomize base from
 * the same source as deploy/prometheus/rules/reluwatch.rules.yml, so the two
 * cannot drift apart.
 */
import { stringify } from "yaml";
import { buildRules } from "../prometheus/rules.js";

export function renderPrometheusRule(): string {
  const manifest = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "reluwatch",
      labels: { "app.kubernetes.io/name": "reluwatch", "app.kubernetes.io/component": "rules" },
    },
    spec: buildRules(),
  };
  return `# Generated from deploy/prometheus/rules.ts by \`make rules\`; do not edit by hand.\n${stringify(manifest, { lineWidth: 0 })}`;
}
