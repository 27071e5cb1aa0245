import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { ROOT } from "./stack.js";
import { mb, ms, ratio, type Summary } from "./stats.js";

export interface Trio {
  proxy: Summary;
  inproc: Summary;
  direct: Summary;
}

export interface Rate {
  perSecond: number;
  ok: number;
  errors: number;
  seconds: number;
  latency: Summary;
  errorSamples: string[];
  /** SOAP requests per operation (only where they go through the benchmark's own client). */
  soapPerOp?: number;
}

export interface Results {
  plan: Record<string, number | number[]>;
  ack: { target: "baseline" | "help" | "power"; rate: number; achievedRate: number; summary: Summary; errorSamples: string[]; loopDelay: { p99: number; max: number }; cpu: Cores; discarded: { p99: number; stall: number; others: number }[] }[];
  proxy: { errors: number; powerOn: Trio; powerOff: Trio; vmGet: Trio };
  e2e: { stack: Summary; on: Summary; off: Summary; ack: Summary; direct: Summary; failures: string[] };
  throughput: { concurrency: number; direct: Rate; inproc: Rate; proxy: Rate; stack: Rate };
  /** Section 4b (absent in runs before it existed): the same, with power methods delayed as a real vCenter's tasks take time. */
  latencyThroughput?: { delayMs: number; concurrency: number; direct: Rate; stack: Rate };
  bridge: Rate & { concurrency: number; stored: number };
  /** RSS in kB: idle, and the largest sample per process and benchmark (benchmarks in the order they ran). */
  memory: { idle: Record<string, number | undefined>; peaks: Record<string, [phase: string, kb: number][]> };
  /** The largest V8 heap (total reserved, and used at that moment) each service reported after a benchmark, in kB. */
  heap: Record<string, { totalKb: number; usedKb: number }>;
  /** Average cores used per benchmark, by the benchmark's processes and by everything else on the machine. */
  cpu: Record<string, Cores>;
  /** Cores other processes used just before the run started, and how long the run waited for quiet. */
  quiet: { others: number; waitedS: number };
}

export interface Cores {
  ours: number;
  others: number;
  byProcess: Record<string, number>;
}

export interface Machine {
  date: string;
  nproc: string;
  cpu: string;
  memory: string;
  node: string;
  natsServer: string;
  govmomi: string;
  commit: string;
}

const COMMAND = "npm run bench   # = bash scripts/setup.sh && pnpm run -s build:ts && tsx bench/run.ts";
const SERVICES = ["vcenter-proxy", "power", "gateway", "veba-bridge"];
const CPU_COLUMNS = ["load generator", ...SERVICES, "nats-server", "vcsim", "signature-server"];

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "?";
  }
}

export async function machineInfo(): Promise<Machine> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const kb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  // Only what the figures depend on: the code that runs, the simulator launcher and the policy the bench copies.
  const dirty = run("git", ["status", "--porcelain", "--", "packages", "services", "bench", "tools", "deploy/policy.example.yaml", "package.json", "pnpm-lock.yaml"]) !== "";
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    nproc: run("nproc", []),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "?",
    memory: `${(kb / 1024 / 1024).toFixed(1)} GiB`,
    node: process.version,
    natsServer: run("nats-server", ["--version"]),
    govmomi: `govmomi ${run("dpkg-query", ["-W", "-f=${Version}", "golang-github-vmware-govmomi-dev"])} simulator (tools/vcsim)`,
    commit: `${run("git", ["rev-parse", "--short", "HEAD"])}${dirty ? " + uncommitted changes to the code under test (packages, services, bench, tools)" : " (no uncommitted changes to the code under test)"}`,
  };
}

const yes = (ok: boolean) => (ok ? "**met**" : "**missed**");
const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(0)} %` : "–");
const lat = (s: Summary) => `${ms(s.p50)} / ${ms(s.p95)}`;
/** A throughput table row: rate, counts, latency, and the share of `direct`'s rate. */
const rateRow = (name: string, x: Rate, direct: Rate) => `| ${name} | ${x.perSecond.toFixed(1)} | ${x.ok} | ${x.errors} | ${lat(x.latency)} | ${pct(x.perSecond, direct.perSecond)} |`;

export function renderReport(r: Results, m: Machine, seconds: number): string {
  const ack200 = r.ack.filter((a) => a.rate === 200 && a.target !== "baseline");
  const ackWorst = Math.max(...ack200.map((a) => a.summary.p99));
  const overhead = r.e2e.stack.p50 - r.e2e.direct.p50;
  const tpShare = r.throughput.stack.perSecond / r.throughput.direct.perSecond;
  const peakOf = (name: string) => Math.max(r.memory.idle[name] ?? 0, ...(r.memory.peaks[name] ?? []).map(([, kb]) => kb));
  const memWorst = Math.max(...SERVICES.map(peakOf));
  const hop = r.proxy.powerOn.proxy.p50 - r.proxy.powerOn.inproc.p50;
  const extraSoap = r.proxy.powerOn.inproc.p50 - r.proxy.powerOn.direct.p50;

  const L: string[] = [];
  const p = (...lines: string[]) => L.push(...lines);

  p(
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts); the figures below are from the run described in the first table.",
    "Run it again to get this machine's figures; the file is rewritten. Everything runs on loopback: a private",
    "nats-server, the vCenter simulator (vcsim) with its demo inventory plus the benchmark's own VMs, the built",
    "services as child processes (as `npm start` runs them), a Slack sink for response URLs, and a bare",
    "signature-checking HTTP server as the floor for ack latency.",
    "Sections 6c (`npm run bench -- --vms 10,1000,10000`), 6d (`-- --storm`) and 6e (`-- --commands`) come from runs",
    "of their own, with their machine, date and command; a full run keeps them, and their rows of the Targets table.",
    "",
    "## Machine and run",
    "",
    "| | |",
    "|---|---|",
    `| date | ${m.date} |`,
    `| command | \`${COMMAND}\` |`,
    `| commit | ${m.commit} |`,
    `| CPU | ${m.cpu} |`,
    `| cores (\`nproc\`) | ${m.nproc} |`,
    `| memory | ${m.memory} |`,
    `| Node | ${m.node} |`,
    `| NATS | ${m.natsServer} (JetStream, file storage in /tmp) |`,
    `| vCenter | ${m.govmomi} |`,
    `| run time | ${seconds.toFixed(0)} s |`,
    `| other processes on the machine | ${r.quiet.others.toFixed(2)} cores busy just before the start${r.quiet.waitedS >= 4 ? ` (after waiting ${r.quiet.waitedS.toFixed(0)} s for a quieter moment)` : ""}; per benchmark below |`,
    "",
    "Every process (nats-server, vcsim, four services, the baseline server and the load generator itself) shares",
    `the ${m.nproc} cores, so each figure includes contention from the others. The machine is also shared with other work`,
    "(the CPU table below shows how much it took during each benchmark): on it, repeated runs differed by up to a",
    "third in throughput and median latency and by more at p99. Ratios measured in the same run are steadier than",
    "absolute values.",
    "",
    "## Targets",
    "",
    "Reported, not asserted.",
    "",
    "| target | measured | |",
    "|---|---|---|",
    `| gateway ack p99 < 10 ms at 200 req/s | ${ack200.map((a) => `\`${a.target}\` ${ms(a.summary.p99)} ms`).join(", ")} | ${yes(ackWorst < 10)} |`,
    `| end-to-end overhead over direct SOAP < 10 ms at the median | ${ms(overhead)} ms (${ms(r.e2e.stack.p50)} vs ${ms(r.e2e.direct.p50)} ms) | ${yes(overhead < 10)} |`,
    `| whole-stack throughput ≥ 70 % of direct SOAP at concurrency ${r.throughput.concurrency} | ${pct(r.throughput.stack.perSecond, r.throughput.direct.perSecond)} (${r.throughput.stack.perSecond.toFixed(1)} vs ${r.throughput.direct.perSecond.toFixed(1)} ops/s) | ${yes(tpShare >= 0.7)} |`,
    ...(r.latencyThroughput
      ? [
          `| the same, with ${r.latencyThroughput.delayMs} ms vCenter power tasks (section 4b) | ${pct(r.latencyThroughput.stack.perSecond, r.latencyThroughput.direct.perSecond)} (${r.latencyThroughput.stack.perSecond.toFixed(1)} vs ${r.latencyThroughput.direct.perSecond.toFixed(1)} ops/s) | ${yes(r.latencyThroughput.stack.perSecond >= 0.7 * r.latencyThroughput.direct.perSecond)} |`,
        ]
      : []),
    `| bridge ≥ 5,000 events/s | ${r.bridge.perSecond.toFixed(0)} events/s | ${yes(r.bridge.perSecond >= 5000)} |`,
    `| each service < 100 MB resident | largest ${mb(memWorst)} | ${yes(memWorst < 100 * 1024)} |`,
    "",
    "## How to read",
    "",
    "- Latencies are in milliseconds; `p50 / p95` is median / 95th percentile. Percentiles are nearest-rank over all samples.",
    "- **direct** is the vSphere call made by the benchmark process itself with `@iaas/vsphere`'s VimClient on its",
    "  own session: the floor for anything that talks to this simulator.",
    "- **in-process** runs the proxy's own code (`Vcenter.power`, `Vcenter.getVm` from `@iaas/vcenter-proxy`) in the",
    "  benchmark process on a session of its own with the live inventory index, as the proxy runs: the same SOAP",
    "  calls the proxy makes (the VM found by name in the index, the task, one read of the task's state and the VM)",
    "  without NATS and without a process hop.",
    "  **proxy** is the real thing: `requestJson` over NATS to the vcenter-proxy process.",
    "  So *in-process − direct* is the extra vSphere work the proxy does, *proxy − in-process* is the NATS/process hop.",
    "- Ack latency is open loop: request *i* is due at *i*/rate whatever happened before, and its latency counts from",
    "  the due time, so a slow answer delays nothing else and cannot hide queueing (no coordinated omission).",
    "- The simulator completes a task inside the request that starts it, and serialises operations per VM;",
    "  a real vCenter takes seconds per power operation, which would make the fixed overheads here a small fraction.",
    "",
  );

  // 1
  const row = (name: string, t: Trio) =>
    `| ${name} | ${lat(t.direct)} | ${lat(t.inproc)} | ${lat(t.proxy)} | ${ratio(t.proxy.p50, t.direct.p50)} | ${ms(t.proxy.p50 - t.inproc.p50)} |`;
  p(
    "## 1. vcenter-proxy vs direct SOAP (issue 3)",
    "",
    `Sequential, one operation at a time, ${r.plan.powerCycles} off→on cycles per path on VMs of their own (the three`,
    `paths interleaved), ${r.plan.vmGets} reads each. Power = \`PowerOnVM_Task\`/\`PowerOffVM_Task\` and waiting for the`,
    "task (one read of its state: the simulator's tasks are over when their method returns); the proxy and",
    "in-process paths also find the VM by name (the live index) and read the VM with the task's state (`vm-power`).",
    "Direct vm-get = one `RetrievePropertiesEx` of the summary paths on a known moref; the proxy's `vm-get` finds",
    "the VM by name in the index and reads the paths its answer shows (the inventory path comes from the index).",
    "",
    "| operation | direct p50 / p95 | in-process p50 / p95 | proxy p50 / p95 | proxy / direct (median) | NATS + process hop (ms, median) |",
    "|---|---|---|---|---|---|",
    row("power on", r.proxy.powerOn),
    row("power off", r.proxy.powerOff),
    row("vm-get vs property read", r.proxy.vmGet),
    "",
    `Of the power-on median, ${ms(extraSoap)} ms is the proxy's extra vSphere work and ${ms(hop)} ms the NATS hop.${r.proxy.errors ? ` ${r.proxy.errors} operations failed.` : ""}`,
    "",
  );

  // 2
  const base = (rate: number) => r.ack.find((a) => a.rate === rate && a.target === "baseline")!.summary;
  p(
    "## 2. Gateway ack latency (issue 7)",
    "",
    `Signed slash commands at a fixed rate for ${r.plan.ackSeconds} s each, to the gateway and to the baseline`,
    "(`bench/signature-server.ts`: node:http, reads the body, checks the v0 signature and the 5-minute window,",
    "answers 200). `help` is answered by the gateway alone; `power off` is acked only after the reply target is",
    "stored in the KV bucket and the command is published to JetStream and acknowledged (and the per-user rate limit",
    "counted, where the gateway has one). The power service is stopped during this benchmark so the published",
    "commands are not executed (at these rates they would queue behind the simulator for minutes); they are purged",
    "afterwards.",
    "",
    "| rate | target | achieved | requests | errors | p50 | p95 | p99 | max | p99 / baseline p99 | generator stall (max) | others' CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...r.ack.map(
      (a) =>
        `| ${a.rate}/s | ${a.target === "baseline" ? "baseline (signature only)" : a.target === "help" ? "gateway `/iaas help`" : "gateway `/iaas power off`"} | ${a.achievedRate.toFixed(0)}/s | ${a.summary.n + a.summary.errors} | ${a.summary.errors} | ${ms(a.summary.p50)} | ${ms(a.summary.p95)} | ${ms(a.summary.p99)} | ${ms(a.summary.max)} | ${a.target === "baseline" ? "1.00×" : ratio(a.summary.p99, base(a.rate).p99)} | ${ms(a.loopDelay.max)} ms | ${a.cpu.others.toFixed(2)} cores |`,
    ),
    "",
    "*Generator stall* is the load generator's own worst event-loop delay during the run: a request it sent late",
    "counts as slow (latency runs from the due time), so a large stall there points at the machine, not the server.",
    "*Others' CPU* is what processes outside the benchmark used meanwhile (from /proc/stat minus our processes).",
    `A run in which the generator stalled for more than ${r.plan.ackStallMs} ms is repeated (at most ${r.plan.ackRepeats} repeats in all); the repeated runs are listed here, not hidden.`,
    "",
    ...r.ack.flatMap((a) => a.discarded.map((d) => `- repeated: ${a.target} at ${a.rate}/s, p99 ${ms(d.p99)} ms with a ${ms(d.stall)} ms generator stall and ${d.others.toFixed(2)} cores used by other processes`)),
    "",
    ...r.ack.filter((a) => a.errorSamples.length).map((a) => `Errors (${a.target} at ${a.rate}/s), first: \`${a.errorSamples[0]!.replace(/`/g, "'")}\``),
    "",
  );

  // 3
  p(
    "## 3. End-to-end power command latency",
    "",
    `${r.plan.e2eCommands} commands one after another, alternating \`/iaas power on\` and \`off\` on one VM: signed POST to the`,
    "gateway → JetStream → power service (policy; a look-up through the proxy only where folders are protected, and",
    "the benchmark's policy, deploy/policy.example.yaml, protects none) → vcenter-proxy →",
    "simulator → result on JetStream → gateway → POST to the response URL, timed until that post arrives at the sink.",
    "Interleaved with the same `PowerOnVM_Task`/`PowerOffVM_Task` + wait made directly on another VM.",
    "",
    "| | p50 | p95 | max |",
    "|---|---|---|---|",
    `| whole stack (POST → result post) | ${ms(r.e2e.stack.p50)} | ${ms(r.e2e.stack.p95)} | ${ms(r.e2e.stack.max)} |`,
    `| — \`power on\` only | ${ms(r.e2e.on.p50)} | ${ms(r.e2e.on.p95)} | ${ms(r.e2e.on.max)} |`,
    `| — \`power off\` only | ${ms(r.e2e.off.p50)} | ${ms(r.e2e.off.p95)} | ${ms(r.e2e.off.max)} |`,
    `| of which the ack (POST → 200) | ${ms(r.e2e.ack.p50)} | ${ms(r.e2e.ack.p95)} | ${ms(r.e2e.ack.max)} |`,
    `| direct SOAP | ${ms(r.e2e.direct.p50)} | ${ms(r.e2e.direct.p95)} | ${ms(r.e2e.direct.max)} |`,
    "",
    `Overhead at the median: **${ms(overhead)} ms**; ratio ${ratio(r.e2e.stack.p50, r.e2e.direct.p50)}.${r.e2e.failures.length ? ` ${r.e2e.failures.length} commands did not succeed; first: \`${r.e2e.failures[0]!.replace(/`/g, "'")}\`` : ""}`,
    "",
  );

  // 4
  const t = r.throughput;
  const tpRow = (name: string, x: Rate) => rateRow(name, x, t.direct);
  p(
    "## 4. Throughput at the same concurrency",
    "",
    `${t.concurrency} closed-loop workers for ${r.plan.throughputSeconds} s, each alternating on/off on a VM of its own (the same ${t.concurrency} VMs for every path).`,
    "A whole-stack operation counts when its result post arrives.",
    "",
    "| path | ops/s | completed | errors | latency p50 / p95 | of direct |",
    "|---|---|---|---|---|---|",
    tpRow("direct SOAP", t.direct),
    tpRow("proxy logic in-process (same SOAP calls as the proxy)", t.inproc),
    tpRow("vcenter-proxy over NATS (`vm-power`)", t.proxy),
    tpRow("whole stack (Slack command → result post)", t.stack),
    "",
    ...[t.direct, t.inproc, t.proxy, t.stack].filter((x) => x.errorSamples.length).map((x) => `Error sample: \`${x.errorSamples[0]!.replace(/`/g, "'").slice(0, 200)}\``),
    "",
  );

  // 4b
  const d = r.latencyThroughput;
  if (d) {
    const dRow = (name: string, x: Rate) => rateRow(name, x, d.direct);
    p(
      `## 4b. Throughput when vCenter takes time (${d.delayMs} ms per power task)`,
      "",
      `Section 4 again, against a second simulator whose \`PowerOnVM_Task\` and \`PowerOffVM_Task\` take ${d.delayMs} ms (vcsim's`,
      "`-method-delay`), standing in for a real vCenter, where a power task takes from a fraction of a second to",
      "seconds. The proxy is restarted on that simulator with its own clones of the benchmark VMs; the gateway and the",
      `power service are the same processes. ${d.concurrency} closed-loop workers, ${r.plan.throughputSeconds} s per path.`,
      "Against a simulator that answers at once (section 4) the figure is a contest of CPU on a shared 2-core machine",
      "(the gateway, the power service, the proxy, nats-server and vcsim against the benchmark's single process); here",
      "it shows what the stack adds to each operation and whether it serialises them.",
      "",
      "| path | ops/s | completed | errors | latency p50 / p95 | of direct |",
      "|---|---|---|---|---|---|",
      dRow("direct SOAP", d.direct),
      dRow("whole stack (Slack command → result post)", d.stack),
      "",
      ...[d.direct, d.stack].filter((x) => x.errorSamples.length).map((x) => `Error sample: \`${x.errorSamples[0]!.replace(/`/g, "'").slice(0, 200)}\``),
      "",
    );
  }

  // 5
  const b = r.bridge;
  p(
    "## 5. veba-bridge ingest",
    "",
    `\`POST /events\` in VEBA's binary content mode with the real fixture \`VmPoweredOffEvent.router-structured-ce.json\``,
    `(its \`data\` as the body, a unique \`Key\` per event so none is a duplicate), ${b.concurrency} concurrent connections, ${b.seconds.toFixed(0)} s.`,
    "An event counts when the bridge answers 2xx, which it does only after JetStream acknowledged it.",
    "",
    "| events/s | acknowledged | stored (stream delta) | errors | latency p50 / p95 / p99 |",
    "|---|---|---|---|---|",
    `| ${b.perSecond.toFixed(0)} | ${b.ok} | ${b.stored} | ${b.errors} | ${ms(b.latency.p50)} / ${ms(b.latency.p95)} / ${ms(b.latency.p99)} |`,
    "",
  );

  p(
    "## CPU during each benchmark",
    "",
    `Average cores in use (of ${m.nproc}): by the benchmark's processes (load generator, services, nats-server, vcsim, baseline)`,
    "and by everything else on the machine.",
    "",
    `| benchmark | ${CPU_COLUMNS.join(" | ")} | all of the benchmark's | other processes |`,
    `|---|${CPU_COLUMNS.map(() => "---|").join("")}---|---|`,
    ...Object.entries(r.cpu)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, c]) => `| ${k} | ${CPU_COLUMNS.map((n) => (c.byProcess[n] ?? 0).toFixed(2)).join(" | ")} | ${c.ours.toFixed(2)} | ${c.others.toFixed(2)} |`),
    "",
  );

  // 6
  const peakRow = (name: string) => {
    // Resident memory rarely shrinks, so name the benchmark where the peak was (nearly) first reached.
    const phases = (r.memory.peaks[name] ?? []).filter(([ph]) => ph !== "idle");
    const top = Math.max(0, ...phases.map(([, kb]) => kb));
    const first = phases.find(([, kb]) => kb >= 0.97 * top);
    const worst = peakOf(name);
    const h = r.heap[name];
    return `| ${name} | ${mb(r.memory.idle[name])} | ${first ? `${mb(top)} (reached during ${first[0]})` : "–"} | ${h ? `${mb(h.totalKb)} (${mb(h.usedKb)} in use)` : "–"} | ${SERVICES.includes(name) ? (worst < 100 * 1024 ? "yes" : "**no**") : "(not a service)"} |`;
  };
  p(
    "## 6. Resident memory",
    "",
    "VmRSS from `/proc/<pid>/status`: idle = a few seconds after start with no traffic; under load = the largest sample",
    "(every 200 ms) during the benchmarks, with the benchmark during which it was first (within 3 %) reached. The power",
    "service starts after the ack benchmark. The V8 heap is read from each service's `/metrics`",
    "(`nodejs_heap_size_total_bytes`, and `…_used_bytes` at that moment, garbage included) at the end of each benchmark.",
    "",
    "| process | idle | peak under load | largest V8 heap after a benchmark | < 100 MB |",
    "|---|---|---|---|---|",
    ...SERVICES.map(peakRow),
    ...["signature-server", "nats-server", "vcsim"].map(peakRow),
    "",
  );
  p(...causes(r, { ackWorst, overhead, tpShare, memWorst, peakOf }));
  return `${L.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
}

const cores = (c: Cores | undefined, name: string) => (c?.byProcess[name] ?? 0).toFixed(2);

/**
 * The ceiling the machine puts on section 4's whole stack: CPU per command summed over every
 * process of the benchmark against the CPU per direct operation, both measured in this run.
 */
function wholeStackBound(r: Results): string {
  const t = r.throughput;
  const stack = r.cpu["4. throughput: whole stack"];
  const direct = r.cpu["4. throughput: direct SOAP"];
  if (!stack || !direct || t.stack.perSecond <= 0 || t.direct.perSecond <= 0) return "";
  const stackMs = (1000 * stack.ours) / t.stack.perSecond;
  const directMs = (1000 * direct.ours) / t.direct.perSecond;
  const simStack = (1000 * (stack.byProcess.vcsim ?? 0)) / t.stack.perSecond;
  const simDirect = (1000 * (direct.byProcess.vcsim ?? 0)) / t.direct.perSecond;
  const cap = 2000 / stackMs;
  return (
    ` In all, a command through the whole stack costs ${ms(stackMs)} ms of CPU across the benchmark's processes, a direct operation ${ms(directMs)} ms (the benchmark process and vcsim):` +
    ` on 2 cores that alone caps the whole stack near ${cap.toFixed(0)} commands a second, ${pct(cap, t.direct.perSecond)} of direct, however well the processes overlap.` +
    ` Of it, vcsim's share is ${ms(simStack)} ms per command against ${ms(simDirect)} ms per direct operation (the VM's facts read with the task's state, and the live index, which the simulator serves by re-collecting its whole container view on every change in its inventory, docs/vcsim-notes.md, where vCenter sends only what changed).` +
    ` Section 4b measures the same stack against power tasks that take time, as vCenter's do.`
  );
}
/** CPU milliseconds one process spent per operation, from its average cores and the operation rate. */
const cpuMsPer = (c: Cores | undefined, name: string, perSecond: number) => (perSecond > 0 ? ((1000 * (c?.byProcess[name] ?? 0)) / perSecond).toFixed(2) : "–");

/**
 * For each missed target, what this run's own figures say about why. Only measured facts and the
 * simulator's documented behaviour go in here.
 */
function causes(r: Results, k: { ackWorst: number; overhead: number; tpShare: number; memWorst: number; peakOf: (n: string) => number }): string[] {
  const out: string[] = ["## Where a target is missed, and the likely cause", ""];
  const none = out.length;

  if (k.ackWorst >= 10) {
    const a200 = r.ack.filter((a) => a.rate === 200);
    const base = a200.find((a) => a.target === "baseline")!;
    const worst = a200.filter((a) => a.target !== "baseline").sort((x, y) => y.summary.p99 - x.summary.p99)[0]!;
    const busy = worst.cpu.others > 0.3;
    // One stall of S ms makes about S × rate / 1000 requests late; p99 needs 1 % of them slow.
    const stalled = (worst.loopDelay.max * worst.rate) / 1000 >= (worst.summary.n + worst.summary.errors) / 100;
    out.push(
      `- **Ack p99 at 200 req/s** (${worst.target}: ${ms(worst.summary.p99)} ms; baseline ${ms(base.summary.p99)} ms).` +
        (busy ? ` During that run other processes used ${worst.cpu.others.toFixed(2)} cores of the 2, so part of the tail is the shared machine.` : "") +
        (stalled
          ? ` The load generator's own event loop stalled for up to ${ms(worst.loopDelay.max)} ms (its garbage collection or being descheduled); requests due meanwhile went out late and count as slow, so the generator alone can account for tail latencies of that size.`
          : "") +
        (!busy && !stalled
          ? ` Neither other processes (${worst.cpu.others.toFixed(2)} cores) nor the load generator (its worst stall, ${ms(worst.loopDelay.max)} ms, delays only a handful of the ${worst.summary.n} requests) explain the tail (p95 ${ms(worst.summary.p95)} ms, p99 ${ms(worst.summary.p99)} ms),` +
            " so it is likely pauses in the gateway itself (garbage collection: its heap grows under this load, section 6) or in nats-server's JetStream writes; this run does not tell them apart."
          : "") +
        ` The medians (${ms(worst.summary.p50)} ms vs ${ms(base.summary.p50)} ms for the baseline) are the gateway's own cost: Bolt's receiver and listener chain` +
        (worst.target === "power" ? ", the reply target stored in the KV bucket, the rate-limit counter and a JetStream publish acknowledged by the server, each a NATS round trip." : "."),
    );
  }

  if (k.overhead >= 10) {
    const on = r.proxy.powerOn;
    const off = r.proxy.powerOff;
    const avg = (f: (t: Trio) => number) => (f(on) + f(off)) / 2;
    const extraSoap = avg((t) => t.inproc.p50 - t.direct.p50);
    const hop = avg((t) => t.proxy.p50 - t.inproc.p50);
    const rest = r.e2e.on.p50 - on.proxy.p50;
    out.push(
      `- **End-to-end overhead** (${ms(k.overhead)} ms at the median). Section 1 accounts for most of it: the proxy's vSphere work beyond the bare task` +
        ` (the VM's facts, read with the task's state; the look-up by name comes from the live index) costs about ${ms(extraSoap)} ms, the NATS request/reply hop into the proxy process about ${ms(hop)} ms.` +
        ` What is left for the command path itself (the gateway's KV writes and JetStream publish, which the ack's ${ms(r.e2e.ack.p50)} ms median includes, the power consumer, the result's publish, the gateway's relay and the POST to the response URL)` +
        ` is roughly \`on\` end to end minus \`vm-power\` through the proxy: ${rest >= 1 ? `${ms(rest)} ms` : "a few milliseconds at most"} (medians from different benchmarks, so approximate; the ack's reply and the command's execution overlap).` +
        " On a real vCenter, where a power task takes seconds, this fixed cost is a few percent; against the simulator, whose tasks finish inside the call, it dominates.",
    );
  }

  if (k.tpShare < 0.7) {
    const t = r.throughput;
    const c = (label: string) => r.cpu[`4. throughput: ${label}`];
    const perCall = (label: string, proc: string, x: Rate) =>
      x.perSecond > 0 && x.soapPerOp ? ((1000 * (c(label)?.byProcess[proc] ?? 0)) / x.perSecond / x.soapPerOp).toFixed(2) : "–";
    out.push(
      `- **Throughput** (${(100 * k.tpShare).toFixed(0)} % of direct). Every path here is limited by CPU, the machine's 2 cores shared by the process doing the SOAP work and vcsim` +
        (Math.max(c("direct SOAP")?.others ?? 0, c("proxy logic in-process")?.others ?? 0, c("proxy over NATS")?.others ?? 0) > 0.3 ? " (and by what other processes left of them)" : "") +
        ":" +
        ` the process doing the SOAP work used ${cores(c("direct SOAP"), "load generator")} cores on the direct run, ${cores(c("proxy logic in-process"), "load generator")} in-process and ${cores(c("proxy over NATS"), "vcenter-proxy")} in the proxy process,` +
        ` while vcsim used ${cores(c("direct SOAP"), "vcsim")}, ${cores(c("proxy logic in-process"), "vcsim")} and ${cores(c("proxy over NATS"), "vcsim")}.` +
        ` A \`vm-power\` makes ${t.inproc.soapPerOp?.toFixed(1) ?? "?"} SOAP requests where the bare task and its wait make ${t.direct.soapPerOp?.toFixed(1) ?? "?"}` +
        ` (the task, then its state and the VM in one read, plus the live index's long poll, answered after every change), at` +
        ` ${perCall("proxy logic in-process", "load generator", t.inproc)} ms of CPU per request against ${perCall("direct SOAP", "load generator", t.direct)} ms:` +
        ` ${cpuMsPer(c("proxy over NATS"), "vcenter-proxy", t.proxy.perSecond)} ms of the proxy's CPU per \`vm-power\`, so one proxy process tops out near ${(1000 / Number(cpuMsPer(c("proxy over NATS"), "vcenter-proxy", t.proxy.perSecond)) || 0).toFixed(0)} a second on this CPU.` +
        ` The NATS hop and the process boundary take ${pct(t.inproc.perSecond - t.proxy.perSecond, t.inproc.perSecond)} off (${t.proxy.perSecond.toFixed(1)} ops/s over NATS vs ${t.inproc.perSecond.toFixed(1)} in-process).` +
        ` The whole stack (${t.stack.perSecond.toFixed(1)} ops/s) shares the 2 cores between the proxy (${cores(c("whole stack"), "vcenter-proxy")} cores, ${cpuMsPer(c("whole stack"), "vcenter-proxy", t.stack.perSecond)} ms per command),` +
        ` the gateway (${cores(c("whole stack"), "gateway")}, ${cpuMsPer(c("whole stack"), "gateway", t.stack.perSecond)} ms), the power service (${cores(c("whole stack"), "power")}, ${cpuMsPer(c("whole stack"), "power", t.stack.perSecond)} ms), nats-server (${cores(c("whole stack"), "nats-server")}) and vcsim (${cores(c("whole stack"), "vcsim")}):` +
        ` ${(c("whole stack")?.ours ?? 0).toFixed(2)} cores in all, other processes ${(c("whole stack")?.others ?? 0).toFixed(2)}.` +
        wholeStackBound(r),
    );
  }

  if (r.bridge.perSecond < 5000) {
    const c = r.cpu["5. bridge ingest"];
    const perEvent = cpuMsPer(c, "veba-bridge", r.bridge.perSecond);
    out.push(
      `- **Bridge ingest** (${r.bridge.perSecond.toFixed(0)} events/s). The bridge process used ${cores(c, "veba-bridge")} cores, nats-server ${cores(c, "nats-server")}, the load generator ${cores(c, "load generator")}` +
        ` and other processes ${(c?.others ?? 0).toFixed(2)} (${((c?.ours ?? 0) + (c?.others ?? 0)).toFixed(2)} of 2 cores busy)` +
        ((c?.byProcess["veba-bridge"] ?? 0) > 0.85 ? ": the bridge's single Node thread was busy nearly all the time." : ".") +
        ` The bridge spent ${perEvent} ms of CPU per event (it parses HTTP, builds and validates a CloudEvent, publishes and waits for JetStream's acknowledgement before answering),` +
        ` so even a whole core to itself would give about ${Number.isFinite(Number(perEvent)) ? (1000 / Number(perEvent)).toFixed(0) : "?"} events/s.` +
        " 5,000 events/s needs less work per event, batch mode (`application/cloudevents-batch+json`, one request for many events) or more than one bridge process.",
    );
  }

  if (k.memWorst >= 100 * 1024) {
    const over = ["vcenter-proxy", "power", "gateway", "veba-bridge"].filter((n) => k.peakOf(n) >= 100 * 1024);
    out.push(
      `- **Resident memory** (${over.map((n) => `${n} ${mb(k.peakOf(n))}`).join(", ")}). Idle, every service is ${mb(Math.max(...["vcenter-proxy", "power", "gateway", "veba-bridge"].map((n) => r.memory.idle[n] ?? 0)))} or less;` +
        " the peaks come under load, when V8 grows its heap to match the allocation rate (SOAP XML parsing in the proxy, HTTP and JSON in the gateway and the bridge) and does not hand it back at once" +
        ` (the proxy's V8 heap reached ${mb(r.heap["vcenter-proxy"]?.totalKb)}, most of its resident size).` +
        " The services run with the V8 limits in deploy/node-options (a 1 MB young generation, old space capped at 96 MB, two V8 worker threads), which make V8 collect instead of growing; what is left is Node's own footprint (code, the loaded modules, buffers) plus the young generation under load.",
    );
  }

  if (out.length === none) out.push("Every target was met in this run.");
  out.push("");
  return out;
}
