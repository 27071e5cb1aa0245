import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Consumers, IaasError, ProxyEndpoints, Subjects, type FinalResult, type PowerCommand, type PowerState } from "@iaas/contracts";
import { DEFAULT_POLICY, loadPolicy, policyFromObject } from "@iaas/policy";
import { createLogger, createMetrics, encodeJson, ensureConsumer, ensureStreams, jetstreamFor, openBucket, requestJson, type Jet, type KV } from "@iaas/runtime";
import { VimClient } from "@iaas/vsphere";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { startProxy } from "../../../test/e2e/harness.js";
import { authorizePowerCommand, buildPowerService } from "../src/mod.js";

/**
 * The power service on real parts (nats-server, the simulator, vcenter-proxy), driven over NATS
 * as an operator would. What matters most is a command handled a second time: after a crash
 * (its state says it started and never finished) the VM is read first, a VM already where the
 * action leaves it counts as done, and reset/reboot are never repeated blindly.
 */
describe("power", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let jet: Jet;
  let state: KV;
  const stops: (() => Promise<unknown>)[] = [];
  const log = createLogger("power-test", process.env.TEST_LOG_LEVEL ?? "silent");

  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
    const proxyNc = await connect({ servers: nats.url });
    const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    const proxy = await startProxy({ nc: proxyNc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
    stops.push(() => proxy.stop(), () => proxyNc.close());
    // The demo VMs have no owner, and unowned VMs are admin-only: U0001 adopts them.
    for (const vm of ["DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"]) {
      await requestJson(proxyNc, ProxyEndpoints.vmSetOwner, { vm, owner: "U0001" }, { timeoutMs: 10_000 });
    }

    const svcNc = await connect({ servers: nats.url });
    const svcJet = await jetstreamFor(svcNc);
    await ensureStreams(svcJet.jsm, ["commands", "results", "audit", "deadLetters"], log);
    await ensureConsumer(svcJet.jsm, "power");
    // Everyone may power VMs except UVIEWER1, who is only a viewer; DC0_H0_VM1 is protected by name.
    const policy = policyFromObject(
      {
        ...DEFAULT_POLICY,
        bindings: [
          { role: "viewer", everyone: true },
          { role: "operator", users: ["U0001"] },
        ],
        protected: { names: ["DC0_H0_VM1"], folders: [] },
      },
      { source: "power-test", env: {} },
    );
    const svc = buildPowerService({ nc: svcNc, jet: svcJet, state: await openBucket(svcNc, "commandState"), policy, log, metrics: createMetrics("power"), config: { proxyTimeoutMs: 30_000, concurrency: 2 } });
    await svc.start();
    stops.push(() => svc.stop(), () => svcNc.close());

    nc = await connect({ servers: nats.url });
    jet = await jetstreamFor(nc);
    state = await openBucket(nc, "commandState");
  });

  afterAll(async () => {
    for (const s of stops) await s().catch(() => undefined);
    await nc?.close();
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  const command = (action: PowerCommand["action"], vm: string, userId = "U0001"): PowerCommand => ({
    id: `p-${randomUUID().slice(0, 18)}`,
    area: "power",
    action,
    vm,
    actor: { userId, via: "nats" },
    issuedAt: new Date().toISOString(),
  });

  /** Publishes with its own Nats-Msg-Id, waits until power has acked it, and reads the final result it recorded. */
  async function run(cmd: PowerCommand, msgId = `${cmd.id}:${randomUUID()}`): Promise<FinalResult> {
    const pa = await jet.js.publish(Subjects.command("power", cmd.action), encodeJson(cmd), { msgID: msgId });
    const def = Consumers.power;
    await waitUntil(`power to ack ${cmd.id}`, async () => {
      const ci = await jet.jsm.consumers.info(def.stream, def.durable);
      return ci.ack_floor.stream_seq >= pa.seq && ci.num_ack_pending === 0;
    }, 30_000);
    const final = ((await state.get(cmd.id))?.json() as { result?: FinalResult } | undefined)?.result;
    if (!final) throw new Error(`no recorded result for ${cmd.id}`);
    return final;
  }

  /** As if an earlier delivery started the command and died before recording its result (longer ago than the ack wait). */
  const interrupted = (cmd: PowerCommand) => state.put(cmd.id, JSON.stringify({ status: "started", at: new Date(Date.now() - 10 * 60_000).toISOString(), delivery: 1 }));

  const powerState = async (vm: string): Promise<PowerState> => (await requestJson(nc, ProxyEndpoints.vmGet, { vm }, { timeoutMs: 10_000 })).vm.powerState;

  /** vCenter's power events since `afterKey` (a reset posts a stop and a start). */
  async function powerEventsSince(afterKey: number): Promise<string[]> {
    const r = await requestJson(nc, ProxyEndpoints.eventsRead, { afterKey, eventTypes: ["VmStoppingEvent", "VmPoweredOffEvent", "VmStartingEvent", "VmPoweredOnEvent", "VmSuspendedEvent"] }, { timeoutMs: 10_000 });
    return r.events.map((e) => e.eventClass);
  }
  const latestEventKey = async () => (await requestJson(nc, ProxyEndpoints.eventsRead, { maxCount: 1 }, { timeoutMs: 10_000 })).latestKey ?? 0;

  it("powers a VM off and answers with the state it left the VM in", async () => {
    const r = await run(command("off", "DC0_H0_VM0"));
    expect(r).toMatchObject({ status: "succeeded", command: "power.off", vm: { name: "DC0_H0_VM0", powerState: "poweredOff" } });
    expect(await powerState("DC0_H0_VM0")).toBe("poweredOff");
  });

  it("a fresh power-off of a VM that is already off is refused by vCenter", async () => {
    const r = await run(command("off", "DC0_H0_VM0"));
    expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_INVALID_POWER_STATE" } });
  });

  it("resumed, a power-off whose VM is already off counts as done and asks vCenter for nothing", async () => {
    const cmd = command("off", "DC0_H0_VM0");
    await interrupted(cmd);
    const since = await latestEventKey();
    const r = await run(cmd);
    expect(r).toMatchObject({ status: "succeeded", vm: { name: "DC0_H0_VM0", powerState: "poweredOff" } });
    expect(await powerEventsSince(since)).toEqual([]);
  });

  it("resumed, a power-on whose VM is still off is carried out", async () => {
    const cmd = command("on", "DC0_H0_VM0");
    await interrupted(cmd);
    const r = await run(cmd);
    expect(r).toMatchObject({ status: "succeeded", vm: { powerState: "poweredOn" } });
    expect(await powerState("DC0_H0_VM0")).toBe("poweredOn");
  });

  it("resumed, a suspend whose VM is already suspended counts as done", async () => {
    expect(await run(command("suspend", "DC0_C0_RP0_VM0"))).toMatchObject({ status: "succeeded", vm: { powerState: "suspended" } });
    const cmd = command("suspend", "DC0_C0_RP0_VM0");
    await interrupted(cmd);
    // A suspend sent again would fail: vCenter refuses to suspend a suspended VM.
    expect(await run(cmd)).toMatchObject({ status: "succeeded", vm: { powerState: "suspended" } });
  });

  it("resumed, a reset or a reboot is not repeated: IAAS_INTERRUPTED, and the VM is left alone", async () => {
    for (const action of ["reset", "reboot"] as const) {
      const cmd = command(action, "DC0_C0_RP0_VM1");
      await interrupted(cmd);
      const since = await latestEventKey();
      const r = await run(cmd);
      expect(r, action).toMatchObject({ status: "failed", error: { code: "IAAS_INTERRUPTED", retryable: false } });
      expect(await powerEventsSince(since), action).toEqual([]);
    }
    // The same reset, fresh, is done.
    const since = await latestEventKey();
    expect(await run(command("reset", "DC0_C0_RP0_VM1"))).toMatchObject({ status: "succeeded", vm: { powerState: "poweredOn" } });
    expect(await powerEventsSince(since)).toContain("VmPoweredOnEvent");
  });

  it("a finished command delivered again is answered from its recorded result, without touching vCenter", async () => {
    const cmd = command("off", "DC0_C0_RP0_VM1");
    const first = await run(cmd);
    expect(first).toMatchObject({ status: "succeeded" });
    const revision = (await state.get(cmd.id))?.revision;
    const since = await latestEventKey();
    // Another power-off would now fail (the VM is off): the same success proves it was not run again.
    expect(await run(cmd)).toEqual(first);
    expect((await state.get(cmd.id))?.revision).toBe(revision);
    expect(await powerEventsSince(since)).toEqual([]);
    // Published again under the same Nats-Msg-Id, JetStream drops it before power sees it.
    const again = await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    const dup = await jet.js.publish(Subjects.command("power", "off"), encodeJson(cmd), { msgID: cmd.id });
    expect([again.duplicate, dup.duplicate]).toEqual([false, true]);
  });

  it("the guard refuses an actor without the power role and a protected VM, before vCenter is asked", async () => {
    const since = await latestEventKey();
    expect(await run(command("off", "DC0_H0_VM1", "UVIEWER1"))).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(await run(command("off", "DC0_H0_VM1"))).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
    expect(await run(command("reset", "/DC0/vm/DC0_H0_VM1"))).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
    expect(await powerState("DC0_H0_VM1")).toBe("poweredOn");
    expect(await powerEventsSince(since)).toEqual([]);
    // Power-on is not a protected action.
    expect(await run(command("on", "DC0_H0_VM1"))).toMatchObject({ status: "failed", error: { code: "IAAS_INVALID_POWER_STATE" } });
  });

  it("with protected folders, the guard finds the VM in vCenter and refuses one inside them", async () => {
    const policy = policyFromObject({ ...DEFAULT_POLICY, protected: { names: [], folders: ["/DC0/vm"] } }, { source: "folders", env: {} });
    const guard = { nc, policy, lookupTimeoutMs: 10_000 };
    const refused = await authorizePowerCommand(guard, command("off", "DC0_H0_VM0")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IaasError);
    expect((refused as IaasError).code).toBe("IAAS_PROTECTED_VM");
    expect((refused as IaasError).message).toContain("over NATS");
    // Power on is not protected, and the VM is U0001's.
    await expect(authorizePowerCommand(guard, command("on", "DC0_H0_VM0"))).resolves.toBeUndefined();
    // Every power command reads the VM (whose it is decides), so one vCenter does not have is the look-up's answer.
    await expect(authorizePowerCommand(guard, command("on", "no-such-vm"))).rejects.toMatchObject({ code: "IAAS_VM_NOT_FOUND" });
    await expect(authorizePowerCommand({ ...guard, policy: loadPolicy({ env: {} }) }, command("off", "no-such-vm"))).rejects.toMatchObject({ code: "IAAS_VM_NOT_FOUND" });
  });

  it("the guard acts on the VM's owner: another user's VM and an unowned one are refused, saying whose it is", async () => {
    const policy = loadPolicy({ env: { IAAS_ADMINS: "UADMIN1" } });
    const guard = { nc, policy, lookupTimeoutMs: 10_000 };
    const other = await authorizePowerCommand(guard, command("off", "DC0_H0_VM0", "UBOB01")).catch((e: unknown) => e as IaasError);
    expect(other).toMatchObject({ code: "IAAS_NOT_ALLOWED" });
    expect(other!.message).toContain("belongs to <@U0001>");
    await expect(authorizePowerCommand(guard, command("off", "DC0_H0_VM0"))).resolves.toBeUndefined();
    await expect(authorizePowerCommand(guard, command("off", "DC0_H0_VM0", "UADMIN1"))).resolves.toBeUndefined();
    const unowned = await authorizePowerCommand(guard, command("off", "tmpl-ubuntu-22.04")).catch((e: unknown) => e as IaasError);
    expect(unowned).toMatchObject({ code: "IAAS_NOT_ALLOWED" });
    expect(unowned!.message).toContain("no owner");
  });
});
