/**
 * Writes deploy/nats/nats-server.conf and deploy/nats/helm-values.yaml from the permissions in
 * packages/contracts/src/permissions.ts. With --check it writes nothing and exits 1 when a
 * checked-in file differs from what it would write.
 *
 *   pnpm gen:nats      (tsx --conditions=source deploy/nats/gen.ts)
 *   pnpm check:nats    (the same with --check)
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { generatedFiles } from "./render.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const check = process.argv.includes("--check");
const stale: string[] = [];
for (const [rel, text] of generatedFiles()) {
  const path = join(root, rel);
  const have = await readFile(path, "utf8").catch(() => undefined);
  if (have === text) continue;
  stale.push(rel);
  if (!check) await writeFile(path, text);
}
if (check && stale.length) {
  console.error(`generated NATS files are stale (run 'pnpm gen:nats'):\n  ${stale.join("\n  ")}`);
  process.exit(1);
}
console.log(check ? "NATS configuration up to date" : `wrote ${stale.length} NATS configuration file(s)`);
