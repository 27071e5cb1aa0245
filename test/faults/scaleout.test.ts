/**
 * Scale-out simulation: a three-node NATS cluster on loopback (routes, JetStream, every stream
 * and bucket with three replicas, made here before the services start), two instances of every
 * service, Slack requests spread over both gateways (a load balancer that skips a dead one), power
 * commands and VM creations under load. Mid-load, one NATS node (the IAAS_COMMANDS stream leader)
 * and one instance of each service are killed with SIGKILL at once; later they are started again.
 * Every command's effect must happen exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams, type FinalResult } from "@iaas/contracts";
import { FaultSystem, until, type ServiceSpec } from "./lib/system.js";
import { isBuilt, type ServiceName } from "./lib/procs.js";
import { startCluster, type Cluster } from "./lib/cluster.js";
import { anyInFlight, idleVms, issueRound, newLedger, poolNames, report, slashUntilAccepted, verifyExactlyOnce, type Ledger } from "./lib/rounds.js";

const ROUNDS = 10;
const KILL_AT = 3;
const RESTART_AT = 7;

describe("scale-out: 3 NATS nodes, 2 instances of every service, one of each killed mid-load", () => {
  let cluster: Cluster;
  let sys: FaultSystem;
  let ledger: Ledger;
  const kinds: ServiceName[] = ["vcenter-proxy", "power", ...(isBuilt("vm-lifecycle") ? (["vm-lifecycle"] as const) : []), "gateway"];
  beforeAll(async () => {
    cluster = await startCluster(3);
    const services: ServiceSpec[] = kinds.flatMap((name) => [1, 2].map((n) => ({ name, label: `${name}-${n}` })));
    sys = await FaultSystem.start({
      name: "scaleout",
      natsUrls: cluster.urls,
      replicas: 3,
      vcsim: { methodDelayMs: { PowerOnVM_Task: 1000, PowerOffVM_Task: 1000, CreateVM_Task: 1000 } },
      ackWaitMs: { power: 10_000, vmLifecycle: 15_000, gatewayResults: 5_000 },
      env: { power: { POWER_TIMEOUT_MS: "4000" }, "vm-lifecycle": { VM_LIFECYCLE_TASK_TIMEOUT_MS: "5000", VM_LIFECYCLE_LOOKUP_TIMEOUT_MS: "4000" } },
      services,
    });
    // Deployed services are restarted when they crash; a crash still fails this test (at the end,
    // after the exactly-once checks have said what it cost).
    for (const p of sys.procs.all) p.supervise = true;
    await sys.createVms(poolNames("so", 12));
    ledger = await newLedger(sys);
  }, 180_000);
  afterAll(async () => {
    await sys?.dispose();
    await cluster?.dispose();
  });

  it("every effect exactly once across the kills", async () => {
    let rr = 0;
    // The load balancer in front of the gateways: round robin over the live ones.
    const gateway = () => {
      const live = ["gateway-1", "gateway-2"].filter((g) => sys.svc(g).running);
      rr += 1;
      return live[rr % live.length] ?? "gateway-2";
    };
    const creates: { name: string; id: string; responseUrl: string; retries: number }[] = [];
    let killedNode = "";
    for (let r = 0; r < ROUNDS; r++) {
      const vms = (await until(`6 idle VMs for round ${r}`, async () => {
        const idle = await idleVms(sys, ledger);
        return idle.length >= 6 && idle;
      }, 120_000, sys)).slice(0, 6);
      const sent = issueRound(sys, ledger, vms, r, gateway, true);
      const name = `so-new-${r}`;
      const created = (async () => {
        const c = await slashUntilAccepted(sys, `create ${name}`, 90_000, gateway);
        creates.push({ name, id: c.slash.id, responseUrl: c.slash.responseUrl, retries: c.retries });
      })();
      if (r === KILL_AT) {
        await sent;
        const ids = ledger.issued.slice(-6).map((i) => i.slash.id);
        await until("a command of the round to start", () => anyInFlight(sys, ids), 30_000, sys);
        killedNode = (await sys.jsm.streams.info(Streams.commands.name)).cluster?.leader ?? "n0";
        await Promise.all([cluster.node(killedNode).kill(), ...kinds.map((k) => sys.svc(`${k}-1`).kill())]);
      }
      if (r === RESTART_AT) {
        await cluster.node(killedNode).restart();
        for (const k of kinds) await sys.svc(`${k}-1`).start();
      }
      await sent;
      await created;
    }
    const v = await verifyExactlyOnce(sys, ledger, 180_000, 1).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\ncrashes: ${sys.crashes().join("; ") || "none"}`);
    });

    // VM creations: one success each, one VM of each name, one creation event each.
    const finals = await sys.waitFinals(creates.map((c) => c.id), 120_000, "creation results");
    const snap = await sys.vmSnapshot();
    const { counts } = await sys.eventCounts(["VmCreatedEvent"]);
    const bad: string[] = [];
    for (const c of creates) {
      const f: FinalResult[] = finals.get(c.id) ?? [];
      if (f.length !== 1 || f[0]!.status !== "succeeded") bad.push(`${c.name}: ${JSON.stringify(f)}`);
      const n = snap.filter((vm) => vm.name === c.name).length;
      if (n !== 1) bad.push(`${c.name}: ${n} VMs of that name`);
      if ((counts.get(c.name)?.VmCreatedEvent ?? 0) !== 1) bad.push(`${c.name}: ${counts.get(c.name)?.VmCreatedEvent ?? 0} VmCreatedEvent`);
    }
    expect(bad, "each create applied exactly once").toEqual([]);

    report("scale-out (before the crash check)", { crashes: sys.crashes().length, crashList: sys.crashes() });
    expect(sys.crashes(), "no instance exited on its own").toEqual([]);
    for (const k of kinds) {
      await until(`two ${k} instances to answer $SRV.PING`, async () => (await sys.ping(k)) === 2, 30_000, sys);
    }
    const info = await sys.jsm.streams.info(Streams.commands.name);
    expect(info.cluster?.replicas?.length, "the restarted node is a replica again").toBe(2);
    report("scale-out", {
      natsNodes: 3,
      instancesPerService: 2,
      killed: `${killedNode} (stream leader) + ${kinds.map((k) => `${k}-1`).join(", ")}`,
      powerCommands: v.commands,
      creates: creates.length,
      requestsRetried: v.retriedRequests + creates.filter((c) => c.retries > 0).length,
      appliedTwice: 0,
      lost: 0,
    });
  });
});
