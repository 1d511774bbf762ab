/**
 * The settings reference table of docs/configuration.md, rendered from
 * OPTION_SPECS so the documentation cannot drift from the code (a test
 * compares the two; `make docs` rewrites it).
 */
import { envOf, flagOf, OPTION_SPECS, type OptionSpec } from "./options.js";

const GROUP_TITLES: Record<OptionSpec["group"], string> = {
  kafka: "Kafka connection (consume, record; simulate takes its own --brokers)",
  stream: "Topics and group (consume)",
  service: "Service (consume)",
  detector: "Detector (consume and replay)",
  limits: "Limits (consume and replay)",
  input: "Rejected input (consume, record and replay)",
};

export const REFERENCE_BEGIN = "<!-- settings-reference:begin (generated from src/config/options.ts) -->";
export const REFERENCE_END = "<!-- settings-reference:end -->";

export function renderSettingsReference(): string {
  const out: string[] = [REFERENCE_BEGIN];
  for (const group of Object.keys(GROUP_TITLES) as OptionSpec["group"][]) {
    out.push(
      "",
      `### ${GROUP_TITLES[group]}`,
      "",
      "| flag | environment | default | meaning |",
      "| --- | --- | --- | --- |",
    );
    for (const spec of OPTION_SPECS.filter((s) => s.group === group)) {
      out.push(
        `| \`${flagOf(spec.name)}\` | \`${envOf(spec.name)}\` | ${renderDefault(spec)} | ${renderDoc(spec)} |`,
      );
    }
  }
  out.push("", REFERENCE_END);
  return out.join("\n");
}

function renderDefault(spec: OptionSpec): string {
  if (spec.default === undefined) return "unset";
  const value = Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default);
  return `\`${value}\``;
}

function renderDoc(spec: OptionSpec): string {
  const allowed = spec.values ? ` One of ${spec.values.map((v) => `\`${v}\``).join(", ")}.` : "";
  return `${spec.doc.replaceAll("|", "\\|")}${allowed}`;
}
