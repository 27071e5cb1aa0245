/**
 * The services' V8 heap limits live in one file, deploy/node-options, and reach the services however
 * they are started: the container entry point, `npm start` and the benchmark read it. Checked by
 * running the real entry point against a stand-in service that reports V8's heap limit.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function entrypointRun(env: Record<string, string>): Promise<{ nodeOptions: string; heapLimitMB: number }> {
  const app = await mkdtemp(join(tmpdir(), "iaas-entry-"));
  try {
    const script = (await readFile(join(root, "deploy/docker/entrypoint.sh"), "utf8")).replaceAll("/app/", `${app}/`);
    await mkdir(join(app, "deploy/docker"), { recursive: true });
    await mkdir(join(app, "services/power/dist"), { recursive: true });
    await writeFile(join(app, "deploy/docker/entrypoint.sh"), script);
    await writeFile(join(app, "deploy/docker/node-options"), await readFile(join(root, "deploy/node-options")));
    await writeFile(
      join(app, "services/power/dist/main.js"),
      `const v8 = require("node:v8"); console.log(JSON.stringify({ nodeOptions: process.env.NODE_OPTIONS, heapLimitMB: v8.getHeapStatistics().heap_size_limit / 1048576 }));`,
    );
    const out = execFileSync("sh", [join(app, "deploy/docker/entrypoint.sh"), "power"], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8" });
    return JSON.parse(out) as { nodeOptions: string; heapLimitMB: number };
  } finally {
    await rm(app, { recursive: true, force: true });
  }
}

describe("V8 heap limits of the services (deploy/node-options)", () => {
  it("names the limits the benchmark's memory figures were measured with", async () => {
    const flags = (await readFile(join(root, "deploy/node-options"), "utf8")).trim();
    expect(flags).toMatch(/--max-old-space-size=\d+/);
    expect(flags).toMatch(/--max-semi-space-size=\d+/);
  });

  it("the container entry point applies them; the operator's NODE_OPTIONS comes after and wins", async () => {
    const plain = await entrypointRun({});
    expect(plain.nodeOptions).toContain("--max-old-space-size=96");
    // The whole heap limit is old space plus young generation: above 96 MB, far below Node's default.
    expect(plain.heapLimitMB).toBeGreaterThan(96);
    expect(plain.heapLimitMB).toBeLessThan(200);
    const raised = await entrypointRun({ NODE_OPTIONS: "--max-old-space-size=512" });
    expect(raised.heapLimitMB).toBeGreaterThan(512);
  });

  it("npm start and the benchmark read the same file", async () => {
    for (const f of ["scripts/start.mjs", "bench/stack.ts", "Dockerfile"]) {
      expect(await readFile(join(root, f), "utf8"), f).toContain("node-options");
    }
  });
});
