/** Generated rule files, by path relative to the package root. */
import { renderPrometheusRule } from "./k8s/prometheus-rule.js";
import { renderRulesYaml } from "./prometheus/rules.js";

export const RULES_FILE = "deploy/prometheus/rules/reluwatch.rules.yml";
export const PROMETHEUS_RULE_FILE = "deploy/k8s/base/prometheusrule.yaml";

export function generatedRuleFiles(): Record<string, string> {
  return { [RULES_FILE]: renderRulesYaml(), [PROMETHEUS_RULE_FILE]: renderPrometheusRule() };
}
