/**
 * The import rules of docs/architecture.md are enforced by dependency-cruiser
 * in `make lint` (.dependency-cruiser.cjs). This checks that the check bites:
 * a throwaway tree with an upward import fails it, the same tree without it
 * passes, and so does the real src/.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { packageRoot } from "../../../src/paths.js";
import { runToExit } from "../../support/child.js";

const CONFIG = join(packageRoot, ".dependency-cruiser.cjs");
const DEPCRUISE = join(packageRoot, "node_modules/dependency-cruiser/bin/dependency-cruiser.mjs");

function cruise(cwd: string) {
  return runToExit(process.execPath, [DEPCRUISE, "src", "--config", CONFIG, "--output-type", "err"], {
    cwd,
    timeout: 60_000,
  });
}

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "reluwatch-layers-"));
  copyFileSync(join(packageRoot, "tsconfig.json"), join(root, "tsconfig.json"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("import rules", () => {
  const roots: string[] = [];
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  test("an upward import (a source importing the service) fails the check, naming the rule", async () => {
    const base = {
      "src/service/stream-task.ts":
        'import type { Batch } from "../source/source.js";\nexport type Task = Batch;\n',
      "src/source/source.ts": "export interface Batch { n: number }\n",
    };
    const clean = tree(base);
    const upward = tree({
      ...base,
      "src/source/kafka-source.ts":
        'import type { Task } from "../service/stream-task.js";\nexport type T = Task;\n',
    });
    roots.push(clean, upward);
    const [ok, bad] = await Promise.all([cruise(clean), cruise(upward)]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.notEqual(bad.status, 0, "the violation must fail the check");
    assert.match(
      bad.stdout + bad.stderr,
      /source: src\/source\/kafka-source\.ts → src\/service\/stream-task\.ts/,
    );
  });

  test("src/ keeps the rules", async () => {
    const r = await cruise(packageRoot);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
