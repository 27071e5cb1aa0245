/**
 * Writes packages/contracts/schemas/*.json from the zod schemas, and docs/errors.md from the
 * error catalogue. With --check it writes nothing and exits 1 when a checked-in file is stale.
 */
import { readFile, writeFile, mkdir, readdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { z } from "zod";
import { wireSchemas } from "./schemas.js";
import { ErrorCatalogue } from "./errors.js";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const schemaDir = join(pkgDir, "schemas");
const errorsDoc = join(pkgDir, "..", "..", "docs", "errors.md");

function files(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(wireSchemas())) {
    const json = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
    out.set(join(schemaDir, `${name}.json`), `${JSON.stringify({ $id: `iaas/${name}`, ...json }, null, 2)}\n`);
  }
  const rows = Object.entries(ErrorCatalogue).map(
    ([code, e]) => `| \`${code}\` | ${e.status} | ${e.retryable ? "yes" : "no"} | ${e.message} | ${e.fix} |`,
  );
  out.set(
    errorsDoc,
    [
      "# Error catalogue",
      "",
      "Generated from `packages/contracts/src/errors.ts` by `pnpm gen:schemas`; CI fails when it is stale.",
      "Every failure a user, an operator or another service sees carries one of these codes. `status` is the",
      "micro-service error code on NATS replies; `retryable` says whether the same request can succeed later.",
      "",
      "| code | status | retryable | what the user reads | how to solve |",
      "|---|---|---|---|---|",
      ...rows,
      "",
    ].join("\n"),
  );
  return out;
}

const check = process.argv.includes("--check");
const want = files();
const stale: string[] = [];
for (const [path, text] of want) {
  const have = await readFile(path, "utf8").catch(() => undefined);
  if (have === text) continue;
  stale.push(path);
  if (!check) {
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, text);
  }
}
const present = await readdir(schemaDir).catch(() => [] as string[]);
for (const f of present) {
  const p = join(schemaDir, f);
  if (!want.has(p)) {
    stale.push(p);
    if (!check) await rm(p);
  }
}
if (check && stale.length) {
  console.error(`generated files are stale (run 'pnpm gen:schemas'):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log(check ? `schemas up to date (${want.size} files)` : `wrote ${stale.length} of ${want.size} files`);
