/**
 * The import rules of docs/architecture.md, checked by `make lint`
 * (dependency-cruiser). Type-only imports count: a layer that names another's
 * types depends on it just the same.
 */
const layer = (name, mayNotImport, comment) => ({
  name,
  comment,
  severity: "error",
  from: { path: `^src/${name.split(":")[0]}/` },
  to: { path: mayNotImport },
});

module.exports = {
  forbidden: [
    {
      name: "core-is-pure",
      comment: "src/core is the detector without I/O: it imports nothing but itself (no node:*, no packages).",
      severity: "error",
      from: { path: "^src/core/" },
      to: { pathNot: "^src/core/" },
    },
    layer(
      "codec",
      "^src/(source|service|sink|config|publisher|sim|demo|eval|cli)/",
      "src/codec may import core types only.",
    ),
    layer(
      "source",
      "^src/(core|codec|service|sink|publisher|sim|demo|eval|cli)/",
      "sources are adapters: they import nothing downstream (codec, core, service, sink).",
    ),
    layer(
      "sink",
      "^src/(source|service|config|publisher|sim|demo|eval|cli)/",
      "sinks take effects; they never reach back into the task or the sources.",
    ),
    layer(
      "service",
      "^src/(publisher|sim|demo|eval|cli)/",
      "the stream task and its processor sit below the commands.",
    ),
    {
      name: "config",
      comment: "settings depend on the detector's config rules and the event policies only.",
      severity: "error",
      from: { path: "^src/config/" },
      to: { path: "^src/(source|service|codec|publisher|sim|demo|eval|cli)/|^src/sink/(?!event-policy\\.ts$)" },
    },
    {
      name: "publisher",
      comment: "the trainer-side SDK shares only the codec, core types, the two Kafka client factories, Kafka's error codes and zstd.",
      severity: "error",
      from: { path: "^src/publisher/" },
      to: {
        path: "^src/(service|sink|sim|demo|eval|cli)/|^src/source/(?!kafka-client\\.ts$|platformatic-client\\.ts$|kafka-errors\\.ts$|kafka-zstd\\.ts$)",
      },
    },
    layer("sim", "^src/(?!core/|sim/)[^/]+/", "the synthetic fleet needs core types only."),
    layer("eval", "^src/(?!core/|sim/|eval/)[^/]+/", "scoring needs core types and the simulator's truth."),
    {
      name: "ui-client-in-the-browser",
      comment: "the explorer's client runs in the browser: it imports only the explorer (and its CSS), no Node.js.",
      severity: "error",
      from: { path: "^src/ui/client/" },
      to: { pathNot: "^src/ui/" },
    },
    layer(
      "ui",
      "^src/(source|service|sink|config|publisher|sim|demo|eval|cli)/",
      "the explorer (client, map format, bundler) depends on nothing of the service.",
    ),
    {
      name: "no-upward-into-cli",
      comment: "only the CLI imports the CLI.",
      severity: "error",
      from: { path: "^src/(?!cli/)" },
      to: { path: "^src/cli/" },
    },
    {
      name: "no-tests-in-src",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts)/" },
    },
    {
      name: "no-circular",
      comment: "a cycle between modules is a layer broken somewhere.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
