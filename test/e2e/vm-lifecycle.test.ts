import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Consumers, ResultSchema, Streams, Subjects, type FinalResult, type Result, type VmCommand } from "@iaas/contracts";
import { loadPolicy } from "@iaas/policy";
import { createLogger, createMetrics, encodeJson, ensureConsumer, ensureStreams, jetstreamFor, openBucket, type Jet, type KV } from "@iaas/runtime";
import { VimClient, listVmSummaries } from "@iaas/vsphere";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { buildVmLifecycleService } from "@iaas/vm-lifecycle";
import { startProxy } from "./harness.js";

/**
 * vm-lifecycle on real parts (nats-server, the simulator, vcenter-proxy), driven over NATS as an
 * operator would. The point here is what JetStream's dedupe cannot cover: the same command
 * handled twice (a redelivery after a lost ack, or a crash between the vCenter task and the
 * result), which must never make a second VM or apply a change twice.
 */
describe("vm-lifecycle", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let jet: Jet;
  let state: KV;
  let observer: VimClient;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const log = createLogger("vm-lifecycle-test", process.env.TEST_LOG_LEVEL ?? "silent");
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
    const proxyNc = await connect({ servers: nats.url });
    const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    const proxy = await startProxy({ nc: proxyNc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
    stops.push(() => proxy.stop(), () => proxyNc.close());

    const svcNc = await connect({ servers: nats.url });
    const svcJet = await jetstreamFor(svcNc);
    await ensureStreams(svcJet.jsm, ["commands", "results", "audit", "deadLetters"], log);
    await ensureConsumer(svcJet.jsm, "vmLifecycle");
    await ensureConsumer(svcJet.jsm, "vmSnapshots");
    const svc = buildVmLifecycleService({
      nc: svcNc,
      jet: svcJet,
      state: await openBucket(svcNc, "commandState"),
      policy: loadPolicy({ env: { IAAS_ADMINS: "UADMIN1" } }),
      log,
      metrics: createMetrics("vm-lifecycle"),
      config: { taskTimeoutMs: 30_000, lookupTimeoutMs: 10_000, concurrency: 2, snapshotSweepMs: 0 },
    });
    await svc.start();
    stops.push(() => svc.stop(), () => svcNc.close());

    nc = await connect({ servers: nats.url });
    jet = await jetstreamFor(nc);
    state = await openBucket(nc, "commandState");
    observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  });

  afterAll(async () => {
    for (const s of stops) await s().catch(() => undefined);
    await nc?.close();
    await observer?.logout().catch(() => undefined);
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  const command = (c: Record<string, unknown>): VmCommand => ({ id: `t-${randomUUID().slice(0, 18)}`, issuedAt: new Date().toISOString(), area: "vm", actor: { userId: "U0001", via: "nats" }, ...c }) as VmCommand;

  /**
   * Publishes with its own Nats-Msg-Id (JetStream would drop a repeat of the command id), waits
   * until the service has acked it, and reads the final result it recorded. (The results stream
   * keeps one final per command id, so a second handling's result is in the state, not the stream.)
   */
  async function run(cmd: VmCommand, msgId = `${cmd.id}:${randomUUID()}`): Promise<{ final: FinalResult; progress: Result[] }> {
    const before = (await jet.jsm.streams.info(Streams.results.name)).state.last_seq;
    const pa = await jet.js.publish(Subjects.command("vm", cmd.action), encodeJson(cmd), { msgID: msgId });
    const def = Consumers.vmLifecycle;
    await waitUntil(`vm-lifecycle to ack ${cmd.id}`, async () => {
      const ci = await jet.jsm.consumers.info(def.stream, def.durable);
      return ci.ack_floor.stream_seq >= pa.seq && ci.num_ack_pending === 0;
    }, 30_000);
    const e = await state.get(cmd.id);
    const final = (e?.json() as { status: string; result?: FinalResult } | undefined)?.result;
    if (!final) throw new Error(`no recorded result for ${cmd.id}`);
    const info = await jet.jsm.streams.info(Streams.results.name);
    const progress: Result[] = [];
    for (let seq = before + 1; seq <= info.state.last_seq; seq++) {
      const m = await jet.jsm.streams.getMessage(Streams.results.name, { seq }).catch(() => null);
      const r = m?.subject === Subjects.result(cmd.id) ? ResultSchema.parse(m.json()) : undefined;
      if (r?.status === "progress") progress.push(r);
    }
    return { final, progress };
  }

  const vmsNamed = async (name: string) => (await listVmSummaries(observer)).filter((v) => v.name === name);

  it("create posts progress, then the VM with its facts; handled again (state lost), it returns the same VM and makes none", async () => {
    const cmd = command({ action: "create", name: "idem-01", size: "medium" });
    const first = await run(cmd);
    expect(first.progress.map((p) => p.status === "progress" && p.message)).toEqual(["Creating `idem-01` (medium: 2 vCPU, 4 GB memory, 40 GB disk)…"]);
    expect(first.final).toMatchObject({ status: "succeeded", vm: { name: "idem-01", numCpu: 2, memoryMB: 4096, owner: "U0001" } });
    // The service forgets it finished (as after a crash before the state was written), then sees the command again.
    await state.delete(cmd.id);
    const second = await run(cmd);
    expect(second.final).toMatchObject({ status: "succeeded", vm: { name: "idem-01", moref: (first.final as { vm: { moref: string } }).vm.moref } });
    expect(await vmsNamed("idem-01")).toHaveLength(1);
  });

  it("a finished command seen again is answered from its recorded result, without touching vCenter", async () => {
    const cmd = command({ action: "create", name: "idem-02" });
    const first = await run(cmd);
    const revision = (await state.get(cmd.id))?.revision;
    const again = await run(cmd);
    expect(again.final).toEqual(first.final);
    // Not handled again: the handler would have recorded "started", then "done".
    expect((await state.get(cmd.id))?.revision).toBe(revision);
    expect(await vmsNamed("idem-02")).toHaveLength(1);
  });

  it("another command making a VM of a taken name is refused as a duplicate", async () => {
    const r = await run(command({ action: "create", name: "idem-01" }));
    expect(r.final).toMatchObject({ status: "failed", error: { code: "IAAS_DUPLICATE_NAME" } });
    expect(await vmsNamed("idem-01")).toHaveLength(1);
  });

  it("resize carries absolute targets: applied twice, the second changes nothing", async () => {
    const cmd = command({ action: "resize", vm: "idem-01", cpu: 3, memoryGB: 6 });
    expect((await run(cmd)).final).toMatchObject({ status: "succeeded", message: "Resized `idem-01`: now 3 vCPU, 6 GB memory, powered off." });
    await state.delete(cmd.id);
    expect((await run(cmd)).final).toMatchObject({ status: "succeeded", message: "`idem-01` already has 3 vCPU and 6 GB memory; nothing changed." });
    expect(await vmsNamed("idem-01")).toMatchObject([{ numCPU: 3, memoryMB: 6144 }]);
  });

  it("a delete resumed after its VM is gone succeeds; a fresh delete of a missing VM is not found", async () => {
    const cmd = command({ action: "delete", vm: "idem-02" });
    expect((await run(cmd)).final).toMatchObject({ status: "succeeded", message: "Deleted `idem-02`." });
    // As if the first delivery deleted the VM and died before recording its result; JetStream
    // redelivers it once the ack wait (15 minutes for vm-lifecycle) has passed.
    await state.put(cmd.id, JSON.stringify({ status: "started", at: new Date(Date.now() - 16 * 60_000).toISOString(), delivery: 1 }));
    expect((await run(cmd)).final).toMatchObject({ status: "succeeded", message: "Deleted `idem-02`." });
    const missing = await run(command({ action: "delete", vm: "never-was" }));
    expect(missing.final).toMatchObject({ status: "failed", error: { code: "IAAS_VM_NOT_FOUND" } });
  });

  it("a command that does not match its schema is answered once and not retried", async () => {
    const id = `t-${randomUUID().slice(0, 18)}`;
    await jet.js.publish(Subjects.command("vm", "create"), encodeJson({ id, area: "vm", action: "create", name: "x", cpu: 99 }), { msgID: id });
    const final = await waitUntil("the refusal", async () => {
      const m = await jet.jsm.streams.getMessage(Streams.results.name, { last_by_subj: Subjects.result(id) }).catch(() => null);
      return m ? ResultSchema.parse(m.json()) : undefined;
    });
    expect(final).toMatchObject({ status: "failed", error: { code: "IAAS_BAD_REQUEST" } });
  });
});
