/**
 * CPU per command, `npm run bench -- --commands` (issue 18): the CPU one Slack command costs each
 * process of the stack, from /proc/<pid>/stat deltas over `ROUNDS` commands divided by their
 * number. A private nats-server, the simulator with its demo inventory, the built gateway, power
 * service and vcenter-proxy as child processes (as `npm start` runs them) and a Slack sink; each
 * command a signed slash command POSTed to the gateway, one at a time, timed until its answer (in
 * the ack, or the final post at its response URL). Baselines measured in the same run: `help`
 * (answered by the gateway alone) and, for `info` and power, the same vSphere work done directly by
 * this process with `@iaas/vsphere`'s VimClient (its CPU and the simulator's).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VimClient, VM_SUMMARY_PATHS, type MoRef } from "@iaas/vsphere";
import { signedHeaders, slashCommandBody, startNatsServer, startVcsim } from "@iaas/testkit";
import { HttpClient, SlackSink, type SinkPost } from "./http.js";
import { CpuMeter, ROOT, healthOf, procTicks, startService, untilReady, type Proc } from "./stack.js";
import { summarize, type Summary } from "./stats.js";

/** Commands per kind (after `WARMUP` not counted); 10 ms ticks over 100 commands resolve 0.1 ms per command. */
const ROUNDS = Number(process.env.BENCH_COMMANDS_ROUNDS ?? 100);
const WARMUP = 5;
const TICK_MS = 10;
const USER = "U0BENCH02";
const VM = "bench-cmd";

export const COMMAND_PROCS = ["gateway", "power", "vcenter-proxy", "nats-server", "vcsim"] as const;

export interface CommandRow {
  command: string;
  /** How it ran: through the stack, or directly (the baselines). */
  path: "stack" | "direct";
  n: number;
  latency: Summary;
  /** CPU ms per command, by process (the bench process as "load generator"). */
  cpuMs: Record<string, number>;
}

export interface CommandsResult {
  rounds: number;
  rows: CommandRow[];
  others: number;
}

const isFinal = (p: SinkPost) => !String(p.body.text ?? "").startsWith(":hourglass");

export async function runCommands(say: (msg: string) => void, helperPids: (() => number | undefined)[]): Promise<CommandsResult> {
  const secret = `bench-${randomBytes(12).toString("hex")}`;
  const [nats, sim, sink] = await Promise.all([startNatsServer(), startVcsim(), SlackSink.start()]);
  helperPids.push(() => nats.pid, () => sim.pid);
  const direct = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-bench-commands" });
  const src = (await direct.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))!;
  const folder = (await direct.searchIndex.findByInventoryPath("/DC0/vm"))!;
  const ref = (await (await direct.vm(src).clone(folder, VM, { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 })) as MoRef;
  const baseRef = (await (await direct.vm(src).clone(folder, `${VM}-direct`, { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 })) as MoRef;

  // As in `npm run bench`: the per-user rate limit relaxed (one user is the whole load).
  const policyDir = await mkdtemp(join(tmpdir(), "iaas-bench-cmd-"));
  const policy = join(policyDir, "policy.yaml");
  const example = await readFile(join(ROOT, "deploy", "policy.example.yaml"), "utf8");
  await writeFile(policy, `# bench --commands: deploy/policy.example.yaml without the per-user rate limit\n${example.replace(/^(\s*perUserPerMinute:\s*)\d+/m, "$11000000")}`);
  // The bench user is an admin, so `list all` may list every VM.
  const env = { NATS_URL: nats.url, LOG_LEVEL: "warn", HEALTH_HOST: "127.0.0.1", HEALTH_PORT: "0", IAAS_POLICY: policy, IAAS_ADMINS: USER };
  const procs = new Map<string, Proc>();
  const up = (name: string, extra: Record<string, string>) => {
    const p = startService(name, { ...env, LOG_LEVEL: "info", ...extra });
    procs.set(name, p);
    return healthOf(p, 60_000);
  };
  const client = new HttpClient(4);
  try {
    const proxyHealth = up("vcenter-proxy", { VCENTER_URL: sim.url, VCENTER_USERNAME: sim.username, VCENTER_PASSWORD: sim.password });
    const powerHealth = up("power", {});
    const gatewayHealth = up("gateway", { SLACK_SIGNING_SECRET: secret, SLACK_API_URL: sink.apiUrl, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1" });
    const slackPort = procs.get("gateway")!.waitForJson("its Slack port", (o) => typeof o.slackPort === "number", 60_000);
    const healths = await Promise.all([proxyHealth, powerHealth, gatewayHealth]);
    const gw = await slackPort;
    await Promise.all(healths.map((h) => untilReady(h, 60_000)));
    const gatewayUrl = `http://127.0.0.1:${String(gw.slackPort)}/slack/events`;
    const pids = (): Record<string, number | undefined> => ({
      "load generator": process.pid,
      gateway: procs.get("gateway")?.child.pid,
      power: procs.get("power")?.child.pid,
      "vcenter-proxy": procs.get("vcenter-proxy")?.child.pid,
      "nats-server": nats.pid,
      vcsim: sim.pid,
    });
    const meter = new CpuMeter(pids);

    /** One slash command until its answer: in the ack, or (an accepted command, or a slow query) the final post. */
    const slash = async (text: string): Promise<void> => {
      const id = `cmd-${randomUUID()}`;
      const body = slashCommandBody({ text, user_id: USER, response_url: sink.responseUrl(id) });
      const r = await client.post(gatewayUrl, { "content-type": "application/x-www-form-urlencoded", ...signedHeaders(secret, body) }, body);
      if (r.status !== 200) throw new Error(`${text}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
      if (/\(request `[^`]+`\)/.test(r.body) || r.body.includes(":hourglass")) {
        const post = await sink.waitFor(id, isFinal, 60_000);
        const t = String(post.body.text ?? "");
        if (!t.startsWith(":white_check_mark:")) throw new Error(`${text}: ${t.slice(0, 200)}`);
      } else if (/:x:|:no_entry:/.test(r.body)) throw new Error(`${text}: ${r.body.slice(0, 200)}`);
      sink.posts.delete(id);
    };
    let on = false;
    let directOn = false;
    const kinds: { command: string; path: "stack" | "direct"; run: () => Promise<void> }[] = [
      { command: "`help` (the gateway alone)", path: "stack", run: () => slash("help") },
      { command: "`list all`", path: "stack", run: () => slash("list all") },
      { command: `\`info ${VM}\``, path: "stack", run: () => slash(`info ${VM}`) },
      { command: `\`power on\` / \`off ${VM}\` (alternating)`, path: "stack", run: () => slash(`power ${(on = !on) ? "on" : "off"} ${VM}`) },
      {
        command: "direct: property read of the VM's summary paths",
        path: "direct",
        run: async () => {
          await direct.retrieve([baseRef], VM_SUMMARY_PATHS);
        },
      },
      {
        command: "direct: `PowerOnVM_Task` / `PowerOffVM_Task` + task read",
        path: "direct",
        run: async () => {
          const o = direct.vm(baseRef);
          await (await ((directOn = !directOn) ? o.powerOn() : o.powerOff())).wait({ timeoutMs: 30_000 });
        },
      },
    ];
    void ref;
    const rows: CommandRow[] = [];
    const a = meter.snap();
    for (const k of kinds) {
      for (let i = 0; i < WARMUP; i++) await k.run();
      // Power: an even number of warm-ups leaves the VM where it started; the counted rounds alternate.
      const before = Object.fromEntries(Object.entries(pids()).map(([n, pid]) => [n, pid === undefined ? 0 : procTicks(pid)]));
      const ms: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const t = performance.now();
        await k.run();
        ms.push(performance.now() - t);
      }
      const cpuMs = Object.fromEntries(Object.entries(pids()).map(([n, pid]) => [n, (((pid === undefined ? 0 : procTicks(pid)) - (before[n] ?? 0)) * TICK_MS) / ROUNDS]));
      rows.push({ command: k.command, path: k.path, n: ROUNDS, latency: summarize(ms), cpuMs });
      const total = Object.entries(cpuMs).filter(([n]) => n !== "load generator").reduce((s, [, v]) => s + v, 0);
      say(`commands: ${k.command}: p50 ${ms.length ? summarize(ms).p50.toFixed(1) : "–"} ms, ${total.toFixed(1)} ms CPU per command (services, nats-server, vcsim)`);
    }
    return { rounds: ROUNDS, rows, others: meter.between(a, meter.snap()).others };
  } finally {
    client.close();
    for (const name of ["gateway", "power", "vcenter-proxy"]) await procs.get(name)?.stop().catch(() => undefined);
    await direct.logout().catch(() => undefined);
    await Promise.all([nats.dispose(), sim.stop(), sink.close(), rm(policyDir, { recursive: true, force: true })]);
  }
}

const TITLE = "## 6e. CPU per command (issue 18)";
export const COMMANDS_TITLE = TITLE;

/** The section of docs/benchmarks.md, and its rows for the Targets table. */
export function renderCommands(r: CommandsResult, machine: string, command: string, date: string): { section: string; targets: string[] } {
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const total = (row: CommandRow) => COMMAND_PROCS.reduce((s, p) => s + (row.cpuMs[p] ?? 0), 0);
  const help = r.rows.find((x) => x.command.startsWith("`help`"))!;
  const find = (prefix: string) => r.rows.find((x) => x.command.startsWith(prefix));
  const info = find("`info");
  const power = find("`power");
  const dRead = find("direct: property");
  const dPower = find("direct: `Power");
  const directTotal = (row: CommandRow | undefined) => (row ? (row.cpuMs["load generator"] ?? 0) + (row.cpuMs.vcsim ?? 0) : Number.NaN);
  const L = [
    TITLE,
    "",
    `Machine: ${machine}; ${date}; \`${command}\` (bench/commands.ts). The machine was shared with other work during the run`,
    `(other processes used ${r.others.toFixed(2)} cores on average meanwhile), so read the ratios to the baselines of the same run.`,
    "",
    "The CPU one command costs each process, from `/proc/<pid>/stat` (utime + stime) before and after",
    `${r.rounds} commands one after another (after 5 not counted), divided by ${r.rounds}; 10 ms ticks, so a figure is ±${(TICK_MS / r.rounds).toFixed(2)} ms.`,
    "A private nats-server, the simulator with its demo inventory (plus two clones), the built gateway, power service and",
    "vcenter-proxy (as `npm start` runs them) and a Slack sink. Each command is a signed slash command POSTed to the",
    "gateway and timed until its answer: in the ack for `help`, `list` and `info`, the result post at the response URL",
    "for power (gateway → JetStream → power → vcenter-proxy → simulator → result → gateway → post). *Sum* is the",
    "services, nats-server and vcsim; the load generator (this process, with the Slack sink) is apart. The direct rows",
    "are the baselines: the same vSphere work done by this process with VimClient (its CPU and vcsim's).",
    "",
    `| command | p50 / p95 ms | ${COMMAND_PROCS.join(" | ")} | sum | load generator | sum / \`help\` |`,
    `|---|---|${COMMAND_PROCS.map(() => "---|").join("")}---|---|---|`,
  ];
  for (const row of r.rows) {
    const direct = row.path === "direct";
    L.push(
      `| ${row.command} | ${f(row.latency.p50)} / ${f(row.latency.p95)} | ${COMMAND_PROCS.map((p) => (direct && p !== "vcsim" ? "–" : f(row.cpuMs[p] ?? 0))).join(" | ")} | ${direct ? f(directTotal(row)) : f(total(row))} | ${f(row.cpuMs["load generator"] ?? 0)} | ${direct ? "–" : `${(total(row) / Math.max(total(help), 1e-9)).toFixed(1)}x`} |`,
    );
  }
  L.push(
    "",
    "For the direct rows, *sum* is this process and vcsim together (there is no other process). Commands here run one",
    "at a time, so each pays its own wake-ups, timers and garbage collection; in section 4's whole-stack run (8 at a",
    "time) those are shared, and the CPU per command there (\"Where a target is missed\") is lower.",
    "",
  );
  const targets: string[] = [];
  if (power && dPower) {
    const over = total(power) - directTotal(dPower);
    L.push(`A power command through the stack costs ${f(total(power))} ms of CPU in all against ${f(directTotal(dPower))} ms for the same operation done directly (${(total(power) / directTotal(dPower)).toFixed(1)}x, ${f(over)} ms more); on ${"2"} cores that caps the whole stack near ${Math.floor(2000 / total(power))} power commands a second and a direct client near ${Math.floor(2000 / directTotal(dPower))}.`);
    targets.push(`| CPU per command, \`power\` e2e, all processes (section 6e) | ${f(total(power))} ms (direct SOAP ${f(directTotal(dPower))} ms, ${(total(power) / directTotal(dPower)).toFixed(1)}x); gateway ${f(power.cpuMs.gateway ?? 0)}, power ${f(power.cpuMs.power ?? 0)}, proxy ${f(power.cpuMs["vcenter-proxy"] ?? 0)}, nats ${f(power.cpuMs["nats-server"] ?? 0)}, vcsim ${f(power.cpuMs.vcsim ?? 0)} | reported |`);
  }
  if (info && dRead) {
    L.push(`\`info\` costs ${f(total(info))} ms in all (vcenter-proxy ${f(info.cpuMs["vcenter-proxy"] ?? 0)} ms) against ${f(directTotal(dRead))} ms for one direct property read of the VM.`);
    targets.push(`| CPU per command, \`info\` and \`list all\` (section 6e) | \`info\` ${f(total(info))} ms (direct read ${f(directTotal(dRead))} ms), \`list all\` ${f(total(find("`list")!))} ms, \`help\` ${f(total(help))} ms | reported |`);
  }
  L.push("");
  return { section: L.join("\n"), targets };
}
