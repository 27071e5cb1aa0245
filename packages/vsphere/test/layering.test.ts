import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The package is layered like govmomi: the client (transport, session) at the bottom, the managed
// object wrappers above it, the service-instance facade on top. An import back down the stack
// (type-only ones included: they tie the files together just the same) makes a circle; this keeps
// one from coming back.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** File (relative to src) → the package files it imports or re-exports from. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, "utf8");
    const deps = [...text.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) =>
      relative(SRC, resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts"))),
    );
    g.set(relative(SRC, file), [...new Set(deps)]);
  }
  return g;
}

/** Every import circle, each as the path that closes it. */
function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, "open");
    stack.push(f);
    for (const d of g.get(f) ?? []) {
      if (state.get(d) === "open") found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (state.get(d) === undefined) visit(d);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of [...g.keys()].sort()) if (state.get(f) === undefined) visit(f);
  return found;
}

describe("package layering", () => {
  const g = graph();

  it("reads the imports it checks", () => {
    expect(g.get("client.ts")?.length).toBeGreaterThan(0);
    expect(g.get("mod.ts")?.length).toBeGreaterThan(0);
  });

  it("has no import circle", () => {
    expect(cycles(g).map((c) => c.join(" -> "))).toEqual([]);
  });

  it("keeps the client below the managed objects", () => {
    const up = (g.get("client.ts") ?? []).filter((d) => d.startsWith("objects/") || ["property.ts", "task.ts", "service_instance.ts"].includes(d));
    expect(up).toEqual([]);
  });

  it("leaves the facade to callers: only mod.ts imports service_instance.ts", () => {
    const importers = [...g].filter(([, deps]) => deps.includes("service_instance.ts")).map(([f]) => f);
    expect(importers).toEqual(["mod.ts"]);
  });
});
