/**
 * Structural checks of the deployment files. No Docker engine or Kubernetes
 * API is reachable here, and schema validators such as kubeconform fetch their
 * schemas from the network at run time, so these tests parse the files with
 * the yaml library and check what a broken deployment would get wrong; the
 * kustomizations are rendered with a real kustomize (`make kustomize`).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { RULES_FILE } from "../../../deploy/generated-rules.js";
import { EXPORTER_PATHS, EXPORTER_PORT } from "../../../deploy/metrics-contract.js";
import { buildRules } from "../../../deploy/prometheus/rules.js";
import { packageRoot } from "../../../src/paths.js";
import { repoFile, run } from "../../support/deploy-files.js";
import { ALERTMANAGER_CONFIG_FILE } from "../../support/prometheus.js";

const COMPOSE = "deploy/docker-compose.yml";

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  read_only?: boolean;
}

function compose(): { services: Record<string, ComposeService> } {
  return parse(repoFile(COMPOSE), { merge: true });
}

/** A compose bind mount's source, as a path relative to the package root. */
function mountSource(volume: string): { source: string; target: string } {
  const [source, target] = volume.split(":");
  return { source: join("deploy", source!).replace(/\\/g, "/"), target: target! };
}

describe("docker-compose.yml and Dockerfile", () => {
  const tmp = mkdtempSync(join(tmpdir(), "reluwatch-deploy-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("has the whole stack, with Kafka in KRaft mode", () => {
    const { services } = compose();
    assert.deepEqual(Object.keys(services).sort(), [
      "alertmanager",
      "grafana",
      "kafka",
      "prometheus",
      "reluwatch",
      "trainer",
    ]);
    assert.match(services.kafka!.image!, /^apache\/kafka:/);
    assert.match(String(services.kafka!.environment!.KAFKA_PROCESS_ROLES), /controller/);
    assert.deepEqual(services.reluwatch!.command, ["consume"]);
    assert.equal(services.reluwatch!.environment!.RELUWATCH_BROKERS, "kafka:9092");
    assert.equal(services.reluwatch!.environment!.RELUWATCH_METRICS_PORT, EXPORTER_PORT);
    assert.equal(services.trainer!.environment!.RELUWATCH_BROKERS, "kafka:9092");
    for (const name of ["reluwatch", "trainer"]) {
      const s = services[name]!;
      assert.equal(s.build!.dockerfile, "deploy/Dockerfile");
      assert.ok(existsSync(resolve(packageRoot, "deploy", s.build!.context, s.build!.dockerfile)));
      assert.equal(s.read_only, true);
    }
  });

  it("mounts only files that exist, and the same ones the tests check", () => {
    const { services } = compose();
    const mounts = Object.values(services).flatMap((s) => (s.volumes ?? []).map(mountSource));
    for (const m of mounts)
      assert.ok(existsSync(join(packageRoot, m.source)), `${m.source} is mounted but missing`);
    const sources = new Set(mounts.map((m) => m.source));
    // Rules: the directory holding the file promtool checks and tests.
    assert.ok(sources.has(dirname(RULES_FILE)), "the tested rule file's directory is mounted");
    const ruleFiles = readdirSync(join(packageRoot, dirname(RULES_FILE)));
    assert.deepEqual(ruleFiles, ["reluwatch.rules.yml"]);
    assert.ok(
      sources.has(ALERTMANAGER_CONFIG_FILE),
      "the Alertmanager config the live test loads is mounted",
    );
    assert.ok(sources.has("deploy/grafana/dashboards"));
    assert.ok(sources.has("deploy/grafana/provisioning"));
    for (const d of ["datasources", "dashboards"]) {
      assert.ok(statSync(join(packageRoot, "deploy/grafana/provisioning", d)).isDirectory());
    }
  });

  it("Prometheus' compose config loads the mounted rules and scrapes reluwatch's metrics port", async () => {
    const { services } = compose();
    const config = parse(repoFile("deploy/prometheus/prometheus.yml")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const rulesMount = services
      .prometheus!.volumes!.map(mountSource)
      .find((m) => m.source === dirname(RULES_FILE))!;
    assert.deepEqual(config.rule_files, [`${rulesMount.target}/*.yml`]);
    const job = config.scrape_configs.find((j) => j.job_name === "reluwatch")!;
    assert.equal(job.metrics_path, EXPORTER_PATHS.metrics);
    assert.deepEqual(job.static_configs[0]!.targets, [`reluwatch:${EXPORTER_PORT}`]);
    assert.deepEqual(config.alerting.alertmanagers[0]!.static_configs[0]!.targets, ["alertmanager:9093"]);

    // promtool resolves the rule glob against this machine: point it at the repository's rules.
    const local = join(tmp, "prometheus.yml");
    writeFileSync(
      local,
      repoFile("deploy/prometheus/prometheus.yml").replace(
        `${rulesMount.target}/*.yml`,
        join(packageRoot, dirname(RULES_FILE), "*.yml"),
      ),
    );
    const { stdout } = await run("promtool", ["check", "config", local]);
    assert.match(stdout, /SUCCESS: 21 rules found/);
  });

  it("the shipped Alertmanager config is valid for amtool", async () => {
    const { stdout } = await run("amtool", ["check-config", join(packageRoot, ALERTMANAGER_CONFIG_FILE)]);
    assert.match(stdout, /SUCCESS/);
  });

  it("the Dockerfile is multi-stage, installs production dependencies only and runs as non-root", () => {
    const text = repoFile("deploy/Dockerfile");
    const stages = text.split("\n").filter((l) => /^FROM /.test(l));
    assert.ok(stages.length >= 2, "multi-stage");
    const final = text.slice(text.lastIndexOf("\nFROM "));
    assert.match(final, /^USER (?!root|0\b)\S+/m, "the runtime stage switches to a non-root user");
    assert.match(text, /npm ci --omit=dev/);
    assert.doesNotMatch(final, /npm (ci|install)/, "no install in the runtime stage");
    assert.match(final, /ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]/);
    assert.match(final, new RegExp(`EXPOSE ${EXPORTER_PORT}`));
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) {
        if (src === ".") continue;
        assert.ok(existsSync(join(packageRoot, src)), `COPY source ${src} is missing`);
      }
    }
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are walked structurally below.
  spec?: any;
  data?: Record<string, string>;
}

function manifests(path: string): K8sObject[] {
  return parseAllDocuments(repoFile(path)).map((d) => d.toJS() as K8sObject);
}

describe("Kubernetes manifests", () => {
  const base = "deploy/k8s/base";
  const kustomization = parse(repoFile(`${base}/kustomization.yaml`)) as { resources: string[] };
  const objects = kustomization.resources.flatMap((r) => manifests(`${base}/${r}`));
  const byKind = (kind: string) => objects.find((o) => o.kind === kind)!;

  it("the base kustomization lists existing files, each a well-formed object", () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      "ConfigMap",
      "Deployment",
      "PrometheusRule",
      "Service",
      "ServiceMonitor",
    ]);
    for (const o of objects) {
      assert.match(o.apiVersion, /^(v1|apps\/v1|monitoring\.coreos\.com\/v1)$/);
      assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it("the Deployment runs non-root on a read-only root filesystem with probes and resources", () => {
    const spec = byKind("Deployment").spec;
    const pod = spec.template.spec;
    assert.deepEqual(spec.selector.matchLabels, spec.template.metadata.labels);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    const [c] = pod.containers;
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    for (const kind of ["requests", "limits"]) {
      assert.ok(c.resources[kind].cpu && c.resources[kind].memory, `${kind} set`);
    }
    const port = c.ports.find((p: { name: string }) => p.name === "metrics");
    assert.equal(port.containerPort, EXPORTER_PORT);
    assert.deepEqual(c.livenessProbe.httpGet, { path: EXPORTER_PATHS.liveness, port: "metrics" });
    assert.deepEqual(c.readinessProbe.httpGet, { path: EXPORTER_PATHS.readiness, port: "metrics" });
    assert.equal(c.envFrom[0].configMapRef.name, byKind("ConfigMap").metadata.name);
    // A writable /tmp, since the root filesystem is not.
    assert.ok(c.volumeMounts.some((m: { mountPath: string }) => m.mountPath === "/tmp"));
    assert.equal(byKind("ConfigMap").data!.RELUWATCH_METRICS_PORT, String(EXPORTER_PORT));
  });

  it("the Service and ServiceMonitor select the pods and scrape the metrics port", () => {
    const podLabels = byKind("Deployment").spec.template.metadata.labels;
    const svc = byKind("Service");
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(podLabels[k], v);
    assert.deepEqual(svc.spec.ports[0], {
      name: "metrics",
      port: EXPORTER_PORT,
      targetPort: "metrics",
      protocol: "TCP",
    });
    const sm = byKind("ServiceMonitor");
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      assert.equal(svc.metadata.labels![k], v);
    assert.equal(sm.spec.endpoints[0].port, "metrics");
    assert.equal(sm.spec.endpoints[0].path, EXPORTER_PATHS.metrics);
  });

  it("the PrometheusRule carries exactly the shipped rule groups", () => {
    const rule = byKind("PrometheusRule");
    const file = parse(repoFile(RULES_FILE));
    assert.deepEqual(rule.spec, file);
    assert.deepEqual(rule.spec, JSON.parse(JSON.stringify(buildRules())));
  });

  it("kustomize renders the base and the overlay, with the overlay's namespace, image and patches", async () => {
    const kustomize = join(packageRoot, ".tmp/bin/kustomize");
    assert.ok(existsSync(kustomize), "kustomize missing: run `make kustomize`");
    const render = async (dir: string) =>
      parseAllDocuments((await run(kustomize, ["build", join(packageRoot, dir)])).stdout).map(
        (d) => d.toJS() as K8sObject,
      );
    const built = await render(base);
    assert.equal(built.length, objects.length);
    for (const o of built) assert.equal(o.metadata.labels!["app.kubernetes.io/name"], "reluwatch");
    const example = await render("deploy/k8s/overlays/example");
    assert.equal(example.length, objects.length);
    for (const o of example) assert.equal((o.metadata as { namespace?: string }).namespace, "ml-monitoring");
    const deployment = example.find((o) => o.kind === "Deployment")!;
    assert.equal(deployment.spec.replicas, 3);
    const [c] = deployment.spec.template.spec.containers;
    assert.equal(c.image, "registry.example.com/ml/reluwatch:0.1.0");
    assert.equal(c.envFrom[1].secretRef.name, "reluwatch-kafka");
    // The patch must not lose the base's hardening or probes.
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.readinessProbe.httpGet.path, EXPORTER_PATHS.readiness);
    assert.equal(
      example.find((o) => o.kind === "ConfigMap")!.data!.RELUWATCH_METRICS_PORT,
      String(EXPORTER_PORT),
    );
  });

  it("the example overlay builds on the base and patches objects that exist", () => {
    const dir = "deploy/k8s/overlays/example";
    const overlay = parse(repoFile(`${dir}/kustomization.yaml`)) as {
      resources: string[];
      images: { name: string }[];
      patches: { path: string; target: { kind: string; name: string } }[];
    };
    assert.deepEqual(overlay.resources, ["../../base"]);
    const image = byKind("Deployment").spec.template.spec.containers[0].image as string;
    assert.ok(overlay.images.every((i) => image.split(":")[0] === i.name));
    for (const p of overlay.patches) {
      const target = objects.find((o) => o.kind === p.target.kind && o.metadata.name === p.target.name);
      assert.ok(target, `patch ${p.path} targets ${p.target.kind}/${p.target.name}, which the base lacks`);
      const [patch] = manifests(`${dir}/${p.path}`);
      assert.equal(patch!.kind, p.target.kind);
      assert.equal(patch!.metadata.name, p.target.name);
    }
  });
});
