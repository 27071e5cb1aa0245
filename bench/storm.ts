/**
 * The event storm of `npm run bench -- --storm` (issue 18): a simulator with `STORM.vms` VMs
 * (`-vm=<n/2> -demo=false`), a private nats-server, and the built vcenter-proxy, veba-bridge (its
 * built-in poller on), remediation and gateway (relaying notices to a Slack sink) as child processes
 * under `deploy/node-options`, with deploy/policy.example.yaml (remediation.maxActionsPerMinute 10).
 *
 * 1. Through the poller: every VM is powered off with direct SOAP calls (so the alarms below ask for
 *    changes, not deferrals); the simulator records an event per power-off, which the poller reads
 *    through the proxy and stores. Stored is compared with the simulator's event keys.
 * 2. Over HTTP: `STORM.events` CloudEvents built from the real VEBA samples (half a CPU alarm turning
 *    red on a VM, half a VM's power-off; structured mode, as VEBA's router sends them), posted by
 *    `STORM.concurrency` connections with `STORM.duplicates` of them sent twice (a duplicate must be
 *    dropped). Stored = the stream's message count delta.
 * 3. Remediation drains the stream (its durable's pending count reaching 0, bounded by
 *    `STORM.drainS`): decided events from its `iaas_remediation_events_total`, changes applied from
 *    the audit stream (the largest number in any 60 s, against the brake), notices posted to Slack
 *    from the sink, the brake's summaries among them.
 * CPU per process from /proc/<pid>/stat over each phase.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Consumers, ProxyEndpoints, Streams } from "@iaas/contracts";
import { requestJson } from "@iaas/runtime";
import { VimClient, listVmSummaries, type MoRef } from "@iaas/vsphere";
import { startNatsServer, startVcsim } from "@iaas/testkit";
import { HttpClient, SlackSink } from "./http.js";
import { CpuMeter, ROOT, healthOf, startService, untilReady, type Proc } from "./stack.js";
import { summarize, type Summary } from "./stats.js";

const envNum = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);

/** The storm's sizes; BENCH_STORM_EVENTS, BENCH_STORM_VMS and BENCH_STORM_DRAIN_S override them (a quick trial). */
export const STORM = {
  /** Events posted over HTTP (half alarms, half power-offs), not counting the duplicates. */
  events: envNum("BENCH_STORM_EVENTS", 20_000),
  /** Of them sent a second time (every 20th post is a repeat), to be dropped. */
  duplicates: Math.floor(envNum("BENCH_STORM_EVENTS", 20_000) / 20),
  /** VMs of the simulator: each gets one red of each of the two CPU alarms (events / 2 / vms rounds). */
  vms: envNum("BENCH_STORM_VMS", 2_500),
  /** VMs powered on and off again for the poller's part. */
  pollerVms: 150,
  concurrency: 32,
  /** How long remediation is given to decide every event, from the first post. */
  drainS: envNum("BENCH_STORM_DRAIN_S", 150),
  /** After the drain, how long to wait for the last minute's summary (posted once the minute is over). */
  summaryWaitS: 65,
};

const FIX = join(ROOT, "services/veba-bridge/test/fixtures/veba");
const SOURCE_ALARM = "AlarmStatusChangedEvent.host-cpu-cluster-alarm.router-structured-ce.json";
const SOURCE_POWER = "VmPoweredOffEvent.router-structured-ce.json";
/**
 * The CPU alarms of deploy/policy.example.yaml's remediation.cpuAlarms (a site's own and vCenter's
 * built-in one), as two alarm definitions: round r of the storm raises the r-th (round 0 every VM once, then round 1).
 */
const ALARMS = [
  { name: "VM CPU Usage", ref: "alarm-6" },
  { name: "Virtual machine CPU usage", ref: "alarm-7" },
  { name: "VM Memory Usage", ref: "alarm-8" },
  { name: "Virtual machine memory usage", ref: "alarm-9" },
];
const NOTIFY_CHANNEL = "C0BENCHSTORM";
const SUMMARY_TEXT = "Remediation reached its limit of";

export interface StormResult {
  plan: typeof STORM;
  vms: number;
  maxActionsPerMinute: number;
  poller: { /** Power operations (on, then off) whose events the poller reads. */ powerOffs: number; powerOffSeconds: number; expected: number; stored: number; storedAfterS: number; cpu: Record<string, number> };
  burst: {
    posted: number;
    unique: number;
    alarms: number;
    powerEvents: number;
    accepted: number;
    duplicatesAnswered: number;
    errors: number;
    errorSamples: string[];
    stored: number;
    seconds: number;
    perSecond: number;
    latency: Summary;
  };
  drain: {
    drained: boolean;
    /** From the burst's first post until the durable had nothing pending (or the window closed). */
    seconds: number;
    decided: number;
    pending: number;
    /** Decided events per 10 s, from the first post. */
    timeline: number[];
    byOutcome: Record<string, number>;
    skips: Record<string, number>;
  };
  changes: { applied: number; maxIn60s: number; byMinute: Record<string, number> };
  notices: { posted: number; summaries: number; byKind: Record<string, number>; brakeMinutes: number; summaryTexts: string[] };
  /** Average cores per process over the burst and the drain together. */
  cpu: { seconds: number; byProcess: Record<string, number>; cpuSecondsByProcess: Record<string, number>; others: number };
}

type Ce = { specversion: string; id: string; source: string; type: string; subject: string; datacontenttype: string; time: string; data: Record<string, unknown> };

async function fixture(name: string): Promise<Ce> {
  return JSON.parse(await readFile(join(FIX, name), "utf8")) as Ce;
}

/** A red CPU alarm on a VM, in the shape of VEBA's AlarmStatusChangedEvent sample. */
function alarmCe(t: Ce, key: number, vm: { name: string; ref: string }, alarm: { name: string; ref: string }): string {
  const data = {
    ...t.data,
    Key: key,
    ChainId: key,
    CreatedTime: new Date().toISOString(),
    Datacenter: { Name: "DC0", Datacenter: { Type: "Datacenter", Value: "datacenter-2" } },
    ComputeResource: null,
    Host: null,
    Vm: { Name: vm.name, Vm: { Type: "VirtualMachine", Value: vm.ref } },
    FullFormattedMessage: `Alarm '${alarm.name}' on ${vm.name} changed from Green to Red`,
    Alarm: { Name: alarm.name, Alarm: { Type: "Alarm", Value: alarm.ref } },
    Source: { Name: "Datacenters", Entity: { Type: "Folder", Value: "group-d1" } },
    Entity: { Name: vm.name, Entity: { Type: "VirtualMachine", Value: vm.ref } },
    From: "green",
    To: "red",
  };
  return JSON.stringify({ ...t, id: randomUUID(), time: new Date().toISOString(), data });
}

/** A VM's power-off, in the shape of VEBA's VmPoweredOffEvent sample. */
function powerCe(t: Ce, key: number, vm: { name: string; ref: string }): string {
  const data = {
    ...t.data,
    Key: key,
    ChainId: key,
    CreatedTime: new Date().toISOString(),
    Vm: { Name: vm.name, Vm: { Type: "VirtualMachine", Value: vm.ref } },
    FullFormattedMessage: `${vm.name} on DC0_H0 in DC0 is powered off`,
  };
  return JSON.stringify({ ...t, id: randomUUID(), time: new Date().toISOString(), data });
}

/** Counters of one metric from a service's /metrics, by the value of `label`. */
async function counters(health: string, metric: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${health}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, "gm"))) {
    const v = new RegExp(`${label}="([^"]*)"`).exec(m[1]!)?.[1] ?? "";
    out[v] = (out[v] ?? 0) + Number(m[2]);
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function streamMessages(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info(Streams.events.name)).state.messages;
}

/** The simulator's newest event key, through the proxy's `events-read` (what the poller reads). */
async function latestKey(nc: NatsConnection): Promise<number> {
  const r = await requestJson(nc, ProxyEndpoints.eventsRead, { maxCount: 1 }, { timeoutMs: 30_000 });
  return r.latestKey ?? 0;
}

/** Every remediation audit record's decision, reason and time, read with an ordered consumer. */
async function remediationAudits(nc: NatsConnection, jsm: JetStreamManager): Promise<{ decision: string; reason?: string; at: string; dryRun: boolean }[]> {
  const js = jetstream(nc);
  const total = (await jsm.streams.info(Streams.audit.name)).state.messages;
  const out: { decision: string; reason?: string; at: string; dryRun: boolean }[] = [];
  if (total === 0) return out;
  const c = await js.consumers.get(Streams.audit.name, { filter_subjects: "iaas.audit.remediation" });
  for (;;) {
    const batch = await c.fetch({ max_messages: 1000, expires: 2_000 });
    let n = 0;
    for await (const m of batch) {
      n++;
      const o = m.json<{ kind?: string; decision?: string; reason?: string; at?: string; dryRun?: boolean }>();
      if (o.kind === "remediation" && o.decision && o.at) out.push({ decision: o.decision, ...(o.reason ? { reason: o.reason } : {}), at: o.at, dryRun: o.dryRun === true });
    }
    if (n === 0) break;
  }
  return out;
}

export async function runStorm(say: (msg: string) => void, helperPids: (() => number | undefined)[]): Promise<StormResult> {
  const perPool = Math.max(1, Math.round(STORM.vms / 2));
  say(`storm: starting nats-server and a simulator with ${perPool * 2} VMs`);
  const [nats, sim, sink] = await Promise.all([startNatsServer(), startVcsim({ vmsPerPool: perPool, demo: false }), SlackSink.start()]);
  helperPids.push(() => nats.pid, () => sim.pid);
  const policy = join(ROOT, "deploy", "policy.example.yaml");
  const maxActionsPerMinute = Number(/^\s*maxActionsPerMinute:\s*(\d+)/m.exec(await readFile(policy, "utf8"))?.[1] ?? NaN);
  const env = { NATS_URL: nats.url, LOG_LEVEL: "warn", HEALTH_HOST: "127.0.0.1", HEALTH_PORT: "0", IAAS_POLICY: policy };
  const vcenter = { VCENTER_URL: sim.url, VCENTER_USERNAME: sim.username, VCENTER_PASSWORD: sim.password };
  const procs = new Map<string, Proc>();
  const meter = new CpuMeter(() => ({
    "load generator": process.pid,
    ...Object.fromEntries([...procs].map(([n, p]) => [n, p.child.pid])),
    "nats-server": nats.pid,
    vcsim: sim.pid,
  }));
  const direct = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-bench-storm", timeoutMs: 120_000 });
  const nc = await connect({ servers: nats.url, name: "bench-storm" });
  const client = new HttpClient(STORM.concurrency);
  try {
    // LOG_LEVEL info where the bench reads a service's log: the proxy's "inventory index is live", the bridge's URL.
    const proxy = startService("vcenter-proxy", { ...env, ...vcenter, LOG_LEVEL: "info" });
    procs.set("vcenter-proxy", proxy);
    const proxyHealth = healthOf(proxy, 120_000);
    await proxy.waitForJson("a live index", (o) => o.msg === "inventory index is live", 300_000);
    // Every VM powered off first, before the bridge starts (its poller begins at vCenter's newest event):
    // the alarms below then ask for a change, not a deferral to the next power-off.
    const vms = (await listVmSummaries(direct)).filter((v) => !v.template).map((v) => ({ name: v.name, ref: v.ref.value, on: v.powerState === "poweredOn", moref: v.ref as MoRef }));
    say(`storm: ${vms.length} VMs; powering them off`);
    const cycle = async (list: typeof vms, op: "on" | "off") => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < list.length) {
            const v = list[next++]!;
            await (await (op === "on" ? direct.vm(v.moref).powerOn() : direct.vm(v.moref).powerOff())).wait({ timeoutMs: 60_000 });
          }
        }),
      );
    };
    await cycle(vms.filter((v) => v.on), "off");
    const botToken = `bench-${randomBytes(12).toString("hex")}`;
    const gateway = startService("gateway", { ...env, LOG_LEVEL: "info", SLACK_SIGNING_SECRET: `bench-${randomBytes(12).toString("hex")}`, SLACK_BOT_TOKEN: botToken, SLACK_API_URL: sink.apiUrl, SLACK_NOTIFY_CHANNEL: NOTIFY_CHANNEL, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1" });
    const bridge = startService("veba-bridge", { ...env, ...vcenter, LOG_LEVEL: "info", BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", BRIDGE_AUTH: "none", POLLER_ENABLED: "true", POLL_INTERVAL_MS: "1000", POLLER_BATCH: "1000" });
    const remediation = startService("remediation", { ...env, LOG_LEVEL: "info", REMEDIATION_PENDING_RECHECK_MS: "3600000" });
    procs.set("gateway", gateway).set("veba-bridge", bridge).set("remediation", remediation);
    const gatewayHealth = healthOf(gateway, 120_000);
    const [bridgeUrl, bridgeHealth, remHealth] = await Promise.all([
      bridge.waitForJson("its events URL", (o) => o.msg === "bridge listening" && typeof o.url === "string", 120_000).then((o) => String(o.url)),
      healthOf(bridge, 120_000),
      healthOf(remediation, 120_000),
    ]);
    await Promise.all([remHealth, bridgeHealth, await proxyHealth, await gatewayHealth].map((h) => untilReady(h, 120_000)));

    const jsm = await jetstreamManager(nc);

    // ---- 1. through the poller: the first STORM.pollerVms VMs powered on and off again
    const polled = vms.slice(0, STORM.pollerVms);
    say(`storm: ${polled.length} VMs powered on and off again (the poller stores the simulator's events)`);
    const key0 = await latestKey(nc);
    const stream0 = await streamMessages(jsm);
    const pub0 = (await counters(bridgeHealth, "iaas_poller_events_total", "outcome")).published ?? 0;
    const pollA = meter.snap();
    const t0 = performance.now();
    await cycle(polled, "on");
    await cycle(polled, "off");
    const powerOffSeconds = (performance.now() - t0) / 1000;
    const key1 = await latestKey(nc);
    const expected = key1 - key0;
    let stored = 0;
    const pollEnd = performance.now() + 60_000;
    for (;;) {
      stored = (await streamMessages(jsm)) - stream0;
      if (stored >= expected || performance.now() > pollEnd) break;
      await sleep(200);
    }
    const storedAfterS = (performance.now() - t0) / 1000;
    const pollCpu = meter.between(pollA, meter.snap()).byProcess;
    const polledPublished = ((await counters(bridgeHealth, "iaas_poller_events_total", "outcome")).published ?? 0) - pub0;
    say(`storm: ${polled.length * 2} power operations in ${powerOffSeconds.toFixed(1)} s; the poller stored ${stored} of ${expected} events (published ${polledPublished}) ${storedAfterS.toFixed(1)} s after the first`);
    // Remediation decides the poller's events first; the storm's drain is timed from an idle durable.
    const idleEnd = performance.now() + 60_000;
    for (;;) {
      const i = await jsm.consumers.info(Consumers.remediation.stream, Consumers.remediation.durable);
      if ((i.num_pending === 0 && i.num_ack_pending === 0) || performance.now() > idleEnd) break;
      await sleep(200);
    }

    // ---- 2. the burst over HTTP
    const [alarmT, powerT] = await Promise.all([fixture(SOURCE_ALARM), fixture(SOURCE_POWER)]);
    const bodies: string[] = [];
    let key = 1_000_000;
    for (let i = 0; i < STORM.events; i++) {
      const vm = vms[Math.floor(i / 2) % vms.length]!;
      // Each VM once per round, the round's alarm: no red is superseded by a later red of the same alarm on the same VM.
      const round = Math.floor(i / 2 / vms.length) % ALARMS.length;
      bodies.push(i % 2 === 0 ? alarmCe(alarmT, key++, vm, ALARMS[round]!) : powerCe(powerT, key++, vm));
    }
    const posts: string[] = [];
    let d = 0;
    for (let i = 0; i < bodies.length; i++) {
      posts.push(bodies[i]!);
      // Every 20th post repeats an earlier event (same source and Key, a new CloudEvent id).
      if (i % 20 === 19 && d < STORM.duplicates) {
        const again = JSON.parse(bodies[i - 10]!) as Ce;
        posts.push(JSON.stringify({ ...again, id: randomUUID() }));
        d++;
      }
    }
    const metrics0 = await counters(remHealth, "iaas_remediation_events_total", "outcome");
    const skips0 = await counters(remHealth, "iaas_remediation_skips_total", "reason");
    const before = await streamMessages(jsm);
    const polledBefore = (await counters(bridgeHealth, "iaas_poller_events_total", "outcome")).published ?? 0;
    const posts0 = sink.apiCalls.length;
    say(`storm: posting ${posts.length} events (${STORM.events} unique) over ${STORM.concurrency} connections`);
    let accepted = 0;
    let dupes = 0;
    let errors = 0;
    const errorSamples: string[] = [];
    const latencies: number[] = [];
    let p = 0;
    const stormA = meter.snap();
    const b0 = performance.now();
    await Promise.all(
      Array.from({ length: STORM.concurrency }, async () => {
        while (p < posts.length) {
          const body = posts[p++]!;
          const s0 = performance.now();
          try {
            const res = await client.post(bridgeUrl, { "content-type": "application/cloudevents+json" }, body, 30_000);
            if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 160)}`);
            const a = JSON.parse(res.body) as { accepted: number; duplicates: number };
            accepted += a.accepted;
            dupes += a.duplicates;
            latencies.push(performance.now() - s0);
          } catch (err) {
            errors++;
            if (errorSamples.length < 3) errorSamples.push(String(err));
          }
        }
      }),
    );
    const burstSeconds = (performance.now() - b0) / 1000;
    await sleep(1_500);
    // The poller keeps running: what it stored meanwhile (the simulator's events of remediation's changes) is not the burst's.
    const polledMeanwhile = ((await counters(bridgeHealth, "iaas_poller_events_total", "outcome")).published ?? 0) - polledBefore;
    const storedBurst = (await streamMessages(jsm)) - before - polledMeanwhile;
    say(`storm: ${latencies.length} posts answered 200 in ${burstSeconds.toFixed(1)} s (${(latencies.length / burstSeconds).toFixed(0)}/s): ${accepted} stored, ${dupes} duplicates; stream +${storedBurst}`);

    // ---- 3. the drain
    const timeline: number[] = [];
    let drained = false;
    let pending = 0;
    let decided = 0;
    const drainEnd = b0 + STORM.drainS * 1000;
    let tick = b0 + 10_000;
    for (;;) {
      const i = await jsm.consumers.info(Consumers.remediation.stream, Consumers.remediation.durable);
      pending = i.num_pending + i.num_ack_pending;
      if (performance.now() >= tick || pending === 0) {
        decided = sum(await counters(remHealth, "iaas_remediation_events_total", "outcome")) - sum(metrics0);
        if (performance.now() >= tick) {
          timeline.push(decided);
          tick += 10_000;
        }
      }
      if (pending === 0) {
        drained = true;
        break;
      }
      if (performance.now() > drainEnd) break;
      await sleep(250);
    }
    const drainSeconds = (performance.now() - b0) / 1000;
    const cpuSnap = meter.between(stormA, meter.snap());
    const wall = (performance.now() - b0) / 1000;
    const outcomes1 = await counters(remHealth, "iaas_remediation_events_total", "outcome");
    const skips1 = await counters(remHealth, "iaas_remediation_skips_total", "reason");
    decided = sum(outcomes1) - sum(metrics0);
    say(`storm: ${drained ? "drained" : "not drained"} after ${drainSeconds.toFixed(1)} s: ${decided} decided, ${pending} pending`);
    const byOutcome = Object.fromEntries(Object.entries(outcomes1).map(([k, v]) => [k, v - (metrics0[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    const skips = Object.fromEntries(Object.entries(skips1).map(([k, v]) => [k, v - (skips0[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

    // The summary of a minute the brake refused changes in is posted once that minute is over: after a
    // drain, wait for the last one; then remediation is stopped, so what is counted below is what it did by then.
    const summaries = () => sink.apiCalls.slice(posts0).filter((c) => c.method === "chat.postMessage" && String(c.body.text ?? "").includes(SUMMARY_TEXT));
    if (drained) {
      const lastMinute = Math.floor(Date.now() / 60_000);
      const end = performance.now() + STORM.summaryWaitS * 1000;
      while (Math.floor(Date.now() / 60_000) <= lastMinute && performance.now() < end) await sleep(500);
      await sleep(5_000);
    }
    say("storm: stopping remediation; reading its audit records");
    await remediation.stop().catch(() => undefined);
    const stoppedAt = Date.now();
    await sleep(3_000); // the gateway relays the last notices
    const audits = await remediationAudits(nc, jsm);
    // Minutes with a refused change that were over 2 s before remediation stopped: each owes one summary.
    const brakeMinutes = new Set(audits.filter((a) => a.reason === "brake").map((a) => Math.floor(Date.parse(a.at) / 60_000)).filter((m) => (m + 1) * 60_000 <= stoppedAt - 2_000)).size;
    const applied = audits.filter((a) => a.decision === "acted" && !a.dryRun).map((a) => Date.parse(a.at)).sort((x, y) => x - y);
    let maxIn60s = 0;
    for (let i = 0, j = 0; i < applied.length; i++) {
      while (applied[i]! - applied[j]! >= 60_000) j++;
      maxIn60s = Math.max(maxIn60s, i - j + 1);
    }
    const byMinute: Record<string, number> = {};
    for (const t of applied) {
      const k = new Date(Math.floor(t / 60_000) * 60_000).toISOString().slice(11, 16);
      byMinute[k] = (byMinute[k] ?? 0) + 1;
    }
    const noticePosts = sink.apiCalls.slice(posts0).filter((c) => c.method === "chat.postMessage" && c.body.channel === NOTIFY_CHANNEL);
    const byKind: Record<string, number> = {};
    for (const a of audits) {
      const k = `${a.decision}${a.reason ? ` (${a.reason})` : ""}`;
      byKind[k] = (byKind[k] ?? 0) + 1;
    }
    const cpuSeconds = Object.fromEntries(Object.entries(cpuSnap.byProcess).map(([k, v]) => [k, v * wall]));
    return {
      plan: STORM,
      vms: vms.length,
      maxActionsPerMinute,
      poller: { powerOffs: polled.length * 2, powerOffSeconds, expected, stored, storedAfterS, cpu: pollCpu },
      burst: {
        posted: posts.length,
        unique: bodies.length,
        alarms: Math.ceil(STORM.events / 2),
        powerEvents: Math.floor(STORM.events / 2),
        accepted,
        duplicatesAnswered: dupes,
        errors,
        errorSamples,
        stored: storedBurst,
        seconds: burstSeconds,
        perSecond: latencies.length / burstSeconds,
        latency: summarize(latencies),
      },
      drain: { drained, seconds: drainSeconds, decided, pending, timeline, byOutcome, skips },
      changes: { applied: applied.length, maxIn60s, byMinute },
      notices: { posted: noticePosts.length, summaries: summaries().length, byKind, brakeMinutes, summaryTexts: summaries().map((s) => String(s.body.text).slice(0, 300)) },
      cpu: { seconds: wall, byProcess: cpuSnap.byProcess, cpuSecondsByProcess: cpuSeconds, others: cpuSnap.others },
    };
  } finally {
    client.close();
    for (const name of ["gateway", "remediation", "veba-bridge", "vcenter-proxy"]) await procs.get(name)?.stop().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await direct.logout().catch(() => undefined);
    await Promise.all([nats.dispose(), sim.stop(), sink.close()]);
  }
}

const TITLE = "## 6d. Event storm (issue 18)";

const n = (v: number) => v.toLocaleString("en");
const s1 = (v: number) => v.toFixed(1);

/** The storm's section of docs/benchmarks.md, and its rows for the Targets table. */
export function renderStorm(r: StormResult, machine: string, command: string, date: string): { section: string; targets: string[] } {
  const b = r.burst;
  const lost = b.unique - b.stored;
  const pollLost = r.poller.expected - r.poller.stored;
  const dr = r.drain;
  const decideRate = dr.decided / dr.seconds;
  const perProc = Object.entries(r.cpu.byProcess).sort((x, y) => y[1] - x[1]);
  const yes = (ok: boolean) => (ok ? "**met**" : "**missed**");
  const outcomes = Object.entries(dr.byOutcome).map(([k, v]) => `${k} ${n(v)}`).join(", ") || "none";
  const kinds = Object.entries(r.notices.byKind).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${n(v)}`).join(", ") || "none";
  const minutes = Object.entries(r.changes.byMinute).map(([k, v]) => `${k} UTC: ${v}`).join(", ") || "none";
  const targets = [
    `| event storm: every event of the burst and of the poller stored, 0 lost, duplicates dropped (section 6d) | ${n(b.stored)} of ${n(b.unique)} stored in ${s1(b.seconds)} s, ${n(lost)} lost, ${n(b.duplicatesAnswered)} of ${n(r.plan.duplicates)} repeats dropped; through the poller ${n(r.poller.stored)} of ${n(r.poller.expected)} | ${yes(lost === 0 && b.errors === 0 && b.duplicatesAnswered === r.plan.duplicates && pollLost === 0)} |`,
    `| event storm: drained by remediation in under a minute | ${dr.drained ? `drained in ${s1(dr.seconds)} s` : `not drained: ${n(dr.decided)} of ${n(b.unique)} decided in ${s1(dr.seconds)} s (${s1(decideRate)}/s)`} | ${yes(dr.drained && dr.seconds < 60)} |`,
    `| event storm: at most \`maxActionsPerMinute\` (${r.maxActionsPerMinute}) changes a minute | ${n(r.changes.applied)} applied, at most ${r.changes.maxIn60s} in any 60 s | ${yes(r.changes.maxIn60s <= r.maxActionsPerMinute)} |`,
    `| event storm: one summary notice per minute of storm | ${r.notices.summaries} summaries for ${r.notices.brakeMinutes} completed minute(s) in which the brake refused changes; ${n(r.notices.posted)} notices posted in all | ${yes(r.notices.summaries === r.notices.brakeMinutes && r.notices.brakeMinutes > 0)} |`,
  ];
  const L = [
    TITLE,
    "",
    `Machine: ${machine}; ${date}; \`${command}\` (bench/storm.ts). The machine was shared with other work during the run`,
    `(other processes used ${r.cpu.others.toFixed(2)} cores on average during the burst and drain), so read the ratios.`,
    "",
    `A simulator with ${n(r.vms)} VMs (\`-vm=${r.vms / 2} -demo=false\`), a private nats-server, and the built vcenter-proxy,`,
    "veba-bridge (its built-in poller on, every second), remediation and gateway (relaying notices to a Slack sink) as",
    "child processes under `deploy/node-options`, with deploy/policy.example.yaml",
    `(\`remediation.maxActionsPerMinute: ${r.maxActionsPerMinute}\`).`,
    "",
    "Every VM is powered off first with direct SOAP calls (8 at a time), before the bridge starts, so that the alarms",
    "below ask for a change rather than a deferral to the next power-off.",
    "",
    `1. **Through the poller**: ${n(r.plan.pollerVms)} of the VMs are powered on and off again (${n(r.poller.powerOffs)} operations); the simulator`,
    "   records events for each, which the poller reads through the proxy (every second, up to 1,000 a read) and",
    "   stores. Expected = the simulator's newest event key after minus before.",
    `2. **Over HTTP**: ${n(b.unique)} CloudEvents built from the VEBA samples \`${SOURCE_ALARM}\` and \`${SOURCE_POWER}\``,
    `   (structured mode, as VEBA's router sends them): ${n(b.alarms)} alarms turning red, every VM once per round in`,
    `   ${n(b.alarms / r.vms)} round(s), round r raising the r-th of ${ALARMS.map((a) => `\`${a.name}\``).join(", ")} (the policy's CPU and memory`,
    "   alarms: four alarm definitions, so no red supersedes another of the same alarm on the same VM), each followed by a",
    `   \`VmPoweredOffEvent\` of the same VM (${n(b.powerEvents)}); every event with its own \`Key\`;`,
    `   every 20th post repeats an earlier event (same source and \`Key\`, a new CloudEvent id): ${n(b.posted)} posts in all,`,
    `   ${r.plan.concurrency} connections. A post counts when the bridge answers 200, which it does once JetStream stored it.`,
    `3. **The drain**: remediation's durable until nothing is pending, at most ${r.plan.drainS} s from the first post; decided =`,
    "   its `iaas_remediation_events_total`; changes = remediation audit records that acted (not dry run), by their time;",
    "   notices = `chat.postMessage` calls the sink received in the notify channel. After the drain (or the window),",
    "   remediation is stopped and its audit records read: the figures below are what it did by then.",
    "",
    "| | |",
    "|---|---|",
    `| poller: events stored | ${n(r.poller.stored)} of ${n(r.poller.expected)} (${n(pollLost)} ${pollLost === 0 ? "lost" : "not stored within 60 s"}), ${s1(r.poller.storedAfterS)} s after the first power operation (the ${n(r.poller.powerOffs)} operations took ${s1(r.poller.powerOffSeconds)} s): ${s1(r.poller.stored / r.poller.storedAfterS)} events/s; meanwhile vcsim used ${(r.poller.cpu.vcsim ?? 0).toFixed(2)} cores, vcenter-proxy ${(r.poller.cpu["vcenter-proxy"] ?? 0).toFixed(2)}, veba-bridge ${(r.poller.cpu["veba-bridge"] ?? 0).toFixed(2)} |`,
    `| burst: answered 200 | ${n(b.accepted + b.duplicatesAnswered)} of ${n(b.posted)} posts (${n(b.errors)} errors${b.errorSamples.length ? `: ${b.errorSamples.join("; ").slice(0, 200)}` : ""}), ${n(b.duplicatesAnswered)} of them answered as duplicates |`,
    `| burst: stored | ${n(b.stored)} of ${n(b.unique)} unique events (JetStream stream delta, less what the poller stored meanwhile): ${n(lost)} lost, ${n(b.stored - b.accepted)} more than the bridge accepted |`,
    `| burst: time to store | ${s1(b.seconds)} s (${n(Math.round(b.perSecond))} posts/s), latency p50 / p99 ${s1(b.latency.p50)} / ${s1(b.latency.p99)} ms |`,
    `| drain | ${dr.drained ? `**drained** ${s1(dr.seconds)} s after the first post` : `**not drained** after ${s1(dr.seconds)} s: ${n(dr.decided)} decided, ${n(dr.pending)} still pending`}; ${s1(decideRate)} events decided a second against ${n(Math.round(b.perSecond))} stored (${(b.perSecond / Math.max(decideRate, 1e-9)).toFixed(0)}x) |`,
    `| decided per 10 s (cumulative) | ${dr.timeline.map(n).join(", ") || "–"} |`,
    `| remediation outcomes | ${outcomes} |`,
    `| decisions (audit) | ${kinds} |`,
    `| changes applied | ${n(r.changes.applied)}; at most ${r.changes.maxIn60s} in any 60 s (the brake: ${r.maxActionsPerMinute}); by minute: ${minutes} |`,
    `| notices posted to Slack | ${n(r.notices.posted)}, of them ${r.notices.summaries} brake summaries; the brake refused changes in ${r.notices.brakeMinutes} minute(s) that were over before remediation was stopped |`,
    "",
    `CPU per process over the burst and the drain (${s1(r.cpu.seconds)} s; average cores of ${"2"}, and CPU seconds):`,
    "",
    `| ${perProc.map(([k]) => k).join(" | ")} | other processes |`,
    `|${perProc.map(() => "---|").join("")}---|`,
    `| ${perProc.map(([k, v]) => `${v.toFixed(2)} (${s1(r.cpu.cpuSecondsByProcess[k] ?? 0)} s)`).join(" | ")} | ${r.cpu.others.toFixed(2)} |`,
    "",
    "Targets (also in the table at the top):",
    "",
    "| target | measured | |",
    "|---|---|---|",
    ...targets,
    "",
  ];
  if (!dr.drained) {
    const rem = r.cpu.byProcess.remediation ?? 0;
    const nats = r.cpu.byProcess["nats-server"] ?? 0;
    const perEvent = Object.entries(r.cpu.cpuSecondsByProcess)
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${k} ${((v * 1000) / Math.max(dr.decided, 1)).toFixed(1)} ms`)
      .join(", ");
    L.push(
      `**Why the drain is slow.** Remediation decides up to 64 events at a time (those of one VM in stream order). Once the`,
      "brake's budget of the minute is known to be spent, a red alarm is refused without reading its VM: it reads its",
      "handled mark, the pause and the lookahead's newer status together, then the flap guard (a compare-and-set) and the",
      "cooldown together, publishes its audit record and writes its handled mark; the refusal is counted in memory and",
      "written once a second. A power-off reads the VM's two deferral keys at once. Each of these is a NATS round trip.",
      `During the window remediation used ${rem.toFixed(2)} cores, nats-server ${nats.toFixed(2)} and vcsim ${(r.cpu.byProcess.vcsim ?? 0).toFixed(2)}, on a machine with`,
      `${r.cpu.others.toFixed(2)} cores taken by other work. CPU per decided event: ${perEvent}.${r.changes.maxIn60s <= r.maxActionsPerMinute && r.notices.summaries === r.notices.brakeMinutes ? " The brake and the summaries held over the part that was decided." : ""}`,
      "",
    );
  }
  if (r.notices.summaryTexts[0]) L.push(`A summary as posted: "${r.notices.summaryTexts[0].replace(/\|/g, "\\|")}"`, "");
  return { section: L.join("\n"), targets };
}

export const STORM_TITLE = TITLE;
