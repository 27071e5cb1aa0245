/**
 * The inventory axis of `npm run bench -- --vms 10,1000,10000`: per inventory size, a simulator
 * with that many VMs (`-vm=<n/2> -demo=false`: two pools), a private nats-server and the built
 * vcenter-proxy under `deploy/node-options`, then the proxy's start-to-index-live time, its RSS,
 * and `vm-list` (the first 20 of all, as `list all` asks), `vm-list` with a pattern, `vm-list` of one
 * user's VMs (as `list` and App Home ask: a scope, here MINE VMs of the same owner at every size),
 * `vm-info` and `vm-power` by name over NATS: p50/p95 and the CPU each costs the proxy and the simulator
 * (/proc/<pid>/stat), the sizes measured side by side (`inventoryRows`). Ratios are to the first
 * (smallest) size of the same run.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { ProxyEndpoints } from "@iaas/contracts";
import { requestJson } from "@iaas/runtime";
import { startNatsServer, startVcsim } from "@iaas/testkit";
import { ROOT, procTicks, startService } from "./stack.js";
import { summarize, type Summary } from "./stats.js";

export interface InventoryRow {
  vms: number;
  /** From the proxy's spawn to "inventory index is live" in its log, and from its login to it. */
  startToLiveMs: number;
  loginToLiveMs: number;
  rssMB: number;
  peakRssMB: number;
  ops: Record<InventoryOp, { summary: Summary; proxyCpuMs: number; vcsimCpuMs: number }>;
}

export type InventoryOp = "list" | "glob" | "mine" | "info" | "power";
export const INVENTORY_OPS: InventoryOp[] = ["list", "glob", "mine", "info", "power"];

/** The bench's user, and the VMs it owns at every size (each pool has at least these five). */
const OWNER = "UBENCH0001";
const MINE = ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_C0_RP0_VM2", "DC0_H0_VM2", "DC0_H0_VM3"];

/** Operations per kind and size, after WARMUP not counted: enough that a median on a shared machine holds still. */
const ROUNDS = 300;
const WARMUP = 50;
const TICK_MS = 10; // USER_HZ is 100 on Linux

async function statusMB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

/** One size's stack, started and ready to measure. */
interface Stack {
  vms: number;
  pid: number;
  simPid: number;
  startToLiveMs: number;
  loginToLiveMs: number;
  run: Record<InventoryOp, () => Promise<unknown>>;
  stop(): Promise<void>;
}

async function startStack(vms: number, say: (msg: string) => void, helperPids: (() => number | undefined)[]): Promise<Stack> {
  const perPool = Math.max(1, Math.round(vms / 2));
  say(`inventory ${vms} VMs: starting the simulator (-vm=${perPool})`);
  const [nats, sim] = await Promise.all([startNatsServer(), startVcsim({ vmsPerPool: perPool, demo: false })]);
  helperPids.push(() => nats.pid, () => sim.pid);
  const env = {
    NATS_URL: nats.url,
    LOG_LEVEL: "info",
    HEALTH_HOST: "127.0.0.1",
    HEALTH_PORT: "0",
    IAAS_POLICY: join(ROOT, "deploy", "policy.example.yaml"),
    VCENTER_URL: sim.url,
    VCENTER_USERNAME: sim.username,
    VCENTER_PASSWORD: sim.password,
  };
  const spawned = performance.now();
  const proxy = startService("vcenter-proxy", env);
  const migrated = proxy.waitForJson("the owner migration", (o) => typeof o.msg === "string" && o.msg.startsWith("owners from extraConfig"), 300_000);
  let loginAt = Number.NaN;
  void proxy.waitForJson("its login", (o) => o.msg === "logged in to vCenter", 300_000).then(() => (loginAt = performance.now()), () => undefined);
  const nc = await connect({ servers: nats.url, name: "bench-inventory" });
  const stop = async () => {
    await nc.close().catch(() => undefined);
    await proxy.stop();
    await Promise.all([sim.stop(), nats.stop()]);
  };
  try {
    await proxy.waitForJson("a live index", (o) => o.msg === "inventory index is live", 300_000);
    const liveAt = performance.now();
    // The start-up owner migration reads every VM once: measured after it, not alongside.
    await migrated;
    const pid = proxy.child.pid!;
    const mem = await statusMB(pid);
    say(`inventory ${vms} VMs: index live ${((liveAt - spawned) / 1000).toFixed(1)} s after start, RSS ${mem.rss} MB`);
    for (const vm of MINE) await requestJson(nc, ProxyEndpoints.vmSetOwner, { vm, owner: OWNER }, { timeoutMs: 120_000 });
    let on = false;
    const run: Record<InventoryOp, () => Promise<unknown>> = {
      list: () => requestJson(nc, ProxyEndpoints.vmList, { limit: 20 }, { timeoutMs: 120_000 }),
      glob: () => requestJson(nc, ProxyEndpoints.vmList, { glob: "DC0_C0_RP0_VM4*", limit: 20 }, { timeoutMs: 120_000 }),
      mine: () => requestJson(nc, ProxyEndpoints.vmList, { scope: { owner: OWNER, teams: [] }, limit: 20 }, { timeoutMs: 120_000 }),
      info: () => requestJson(nc, ProxyEndpoints.vmInfo, { vm: "DC0_H0_VM0" }, { timeoutMs: 120_000 }),
      power: () => requestJson(nc, ProxyEndpoints.vmPower, { vm: "DC0_H0_VM1", action: (on = !on) ? "off" : "on" }, { timeoutMs: 120_000 }),
    };
    return { vms, pid, simPid: sim.pid!, startToLiveMs: liveAt - spawned, loginToLiveMs: liveAt - loginAt, run, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Every size's row. The stacks are started one after another (each start timed while the others
 * idle), then measured together: per operation, round by round, one request to each size (which
 * goes first alternates), so load from elsewhere on the machine falls on every size alike and the
 * ratios hold still; CPU per operation is each process's own over the rounds.
 */
export async function inventoryRows(sizes: number[], say: (msg: string) => void, helperPids: (() => number | undefined)[]): Promise<InventoryRow[]> {
  const stacks: Stack[] = [];
  try {
    for (const vms of sizes) stacks.push(await startStack(vms, say, helperPids));
    const ops = stacks.map(() => ({}) as InventoryRow["ops"]);
    for (const op of INVENTORY_OPS) {
      for (let i = 0; i < WARMUP; i++) for (const s of stacks) await s.run[op]();
      const p0 = stacks.map((s) => procTicks(s.pid));
      const s0 = stacks.map((s) => procTicks(s.simPid));
      const ms = stacks.map((): number[] => []);
      for (let i = 0; i < ROUNDS; i++) {
        const order = i % 2 === 0 ? stacks.map((_, k) => k) : stacks.map((_, k) => stacks.length - 1 - k);
        for (const k of order) {
          const t = performance.now();
          await stacks[k]!.run[op]();
          ms[k]!.push(performance.now() - t);
        }
      }
      stacks.forEach((s, k) => {
        ops[k]![op] = { summary: summarize(ms[k]!), proxyCpuMs: ((procTicks(s.pid) - p0[k]!) * TICK_MS) / ROUNDS, vcsimCpuMs: ((procTicks(s.simPid) - s0[k]!) * TICK_MS) / ROUNDS };
        say(`inventory ${s.vms} VMs: ${op} p50 ${ops[k]![op].summary.p50.toFixed(1)} ms, proxy CPU ${ops[k]![op].proxyCpuMs.toFixed(1)} ms per op`);
      });
    }
    const rows: InventoryRow[] = [];
    for (const [k, s] of stacks.entries()) {
      const end = await statusMB(s.pid);
      rows.push({ vms: s.vms, startToLiveMs: s.startToLiveMs, loginToLiveMs: s.loginToLiveMs, rssMB: end.rss, peakRssMB: end.peak, ops: ops[k]! });
    }
    return rows;
  } finally {
    for (const s of stacks) await s.stop().catch(() => undefined);
  }
}

const TITLE = "## 6c. Inventory axis (issue 18)";

/** The inventory table as markdown, each figure with its ratio to the first row. */
export function renderInventory(rows: InventoryRow[], machine: string, command: string, date: string): string {
  const base = rows[0]!;
  const x = (v: number, b: number) => (b > 0 ? ` (${(v / b).toFixed(2)}x)` : "");
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const lines = [
    TITLE,
    "",
    `Machine: ${machine}; ${date}; \`${command}\`. One simulator per size (\`-vm=<n/2> -demo=false\`), a private nats-server and`,
    "the built vcenter-proxy under `deploy/node-options`; requests over NATS to the proxy (the gateway's share is in",
    `section 3). The sizes' stacks run side by side once started: ${ROUNDS} rounds of each operation after ${WARMUP} not`,
    "counted, each round one request to every size (which goes first alternates), so load from elsewhere on the",
    "machine falls on all sizes alike; CPU per operation from /proc/<pid>/stat (10 ms ticks, so small figures are",
    "coarse). Ratios to the first row of the same run.",
    "",
    `| VMs | start → index live | login → index live | proxy RSS (peak) | \`list\` (first 20 of all) p50 / p95 | proxy CPU per \`list\` | \`list DC0_C0_RP0_VM4*\` p50 | my VMs (${MINE.length}) p50 | \`info\` p50 (proxy CPU) | power by name p50 / p95 (vcsim CPU) |`,
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const o = r.ops;
    const b = base.ops;
    lines.push(
      `| ${r.vms.toLocaleString("en")} | ${(r.startToLiveMs / 1000).toFixed(1)} s${x(r.startToLiveMs, base.startToLiveMs)} | ${(r.loginToLiveMs / 1000).toFixed(1)} s | ${r.rssMB} MB (${r.peakRssMB} MB) | ` +
        `${f(o.list.summary.p50)} / ${f(o.list.summary.p95)} ms${x(o.list.summary.p50, b.list.summary.p50)} | ${f(o.list.proxyCpuMs)} ms${x(o.list.proxyCpuMs, b.list.proxyCpuMs)} | ` +
        `${f(o.glob.summary.p50)} ms${x(o.glob.summary.p50, b.glob.summary.p50)} | ${f(o.mine.summary.p50)} ms${x(o.mine.summary.p50, b.mine.summary.p50)} | ${f(o.info.summary.p50)} ms${x(o.info.summary.p50, b.info.summary.p50)} (${f(o.info.proxyCpuMs)} ms) | ` +
        `${f(o.power.summary.p50)} / ${f(o.power.summary.p95)} ms${x(o.power.summary.p50, b.power.summary.p50)} (${f(o.power.vcsimCpuMs)} ms) |`,
    );
  }
  const last = rows.at(-1)!;
  const within = (op: InventoryOp) => last.ops[op].summary.p50 <= 1.5 * base.ops[op].summary.p50;
  const verdict = (ok: boolean) => (ok ? "**met**" : "**not met**");
  lines.push(
    "",
    `Targets at ${last.vms.toLocaleString("en")} VMs:`,
    ...INVENTORY_OPS.map((op) => `- \`${op}\` within 1.5x of the ${base.vms}-VM p50: ${verdict(within(op))} (${(last.ops[op].summary.p50 / base.ops[op].summary.p50).toFixed(2)}x).`),
    `- proxy RSS < 150 MB: ${verdict(last.peakRssMB < 150)} (peak ${last.peakRssMB} MB).`,
    `- index live < 10 s after login: ${verdict(last.loginToLiveMs < 10_000)} (${(last.loginToLiveMs / 1000).toFixed(1)} s).`,
    "",
    "A `list` reads the index's list view (services/vcenter-proxy/src/list_view.ts), kept up to date by the index's",
    "change notifications, so it costs what it answers: the first 20 of all are the first 20 of its sorted order and",
    "the total a count it keeps; a scope visits only the VMs of its owner and teams; a pattern with a literal prefix",
    "is a range of the sorted names found by binary search (`DC0_C0_RP0_VM4*` matches 1 VM at 10 and 1,111 at 10,000:",
    "the page is the range's first 20, the total its length), any other pattern with one visits the names in that",
    "range. What is left of the growth is mostly the answer's own: at 10 VMs the first 20 of all are the 10 there are",
    "and the pattern matches 1, at 10,000 both answers hold 20 (their JSON, and the reply's schema on both sides).",
    "Measured one size after the other, as this section was before, the `list` ratio moved between 1.07x and 1.64x",
    "from run to run on this shared machine; side by side it was 1.08x and 1.01x in two runs. `info` and power by",
    "name look the VM up in the index and read only it. The simulator's own cost per power operation grows with the inventory: it",
    "re-collects the index's whole container view on every change (docs/vcsim-notes.md), which vCenter does not.",
    "",
  );
  return lines.join("\n");
}

/** The inventory section of a document, or undefined. */
export function extractInventory(doc: string): string | undefined {
  const start = doc.indexOf(TITLE);
  if (start < 0) return undefined;
  const next = doc.indexOf("\n## ", start + TITLE.length);
  return next >= 0 ? doc.slice(start, next + 1) : `${doc.slice(start).trimEnd()}\n`;
}

/** Puts the section into the document: in place of an earlier one, else before the misses section. */
export function spliceInventory(doc: string, section: string): string {
  const start = doc.indexOf(TITLE);
  if (start >= 0) {
    const next = doc.indexOf("\n## ", start + TITLE.length);
    return doc.slice(0, start) + section + (next >= 0 ? doc.slice(next + 1) : "");
  }
  const misses = doc.indexOf("## Where a target is missed");
  return misses >= 0 ? doc.slice(0, misses) + section + "\n" + doc.slice(misses) : `${doc.trimEnd()}\n\n${section}`;
}
