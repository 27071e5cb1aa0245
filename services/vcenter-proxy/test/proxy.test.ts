import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ProxyEndpoints } from "@iaas/contracts";
import { createLogger, createMetrics, requestJson } from "@iaas/runtime";
import { VimClient, VirtualMachine, listVmSummaries } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { failure, startProxy, type StartedProxy } from "./helpers.js";

const log = createLogger("test", "silent");

describe("vcenter-proxy over NATS, against the simulator", () => {
  let nats: NatsServer;
  let sim: Vcsim;
  let nc: NatsConnection;
  let client: VimClient;
  let proxy: StartedProxy;
  /** A second, independent SOAP session: reads back what the proxy did. */
  let observer: VimClient;

  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNatsServer(), startVcsim()]);
    client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
    nc = await connect({ servers: nats.url });
    proxy = await startProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, log)]]), log, metrics: createMetrics("vcenter-proxy"), config: { taskTimeoutMs: 30_000 } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await nc?.close();
    await Promise.all([nats?.dispose(), sim?.stop()]);
  });

  const call = <E extends keyof typeof ProxyEndpoints>(ep: E, req: unknown) =>
    requestJson(nc, ProxyEndpoints[ep] as never, req as never, { timeoutMs: 20_000 }) as Promise<{ vm: { name: string; powerState: string; numCpu: number; memoryMB: number; path?: string; template: boolean } }>;


  async function powerStateOf(name: string): Promise<string> {
    const vms = await listVmSummaries(observer);
    return vms.find((v) => v.name === name)!.powerState;
  }

  it("gets a VM by exact name and by inventory path", async () => {
    const byName = await call("vmGet", { vm: "DC0_H0_VM1" });
    expect(byName.vm).toMatchObject({ name: "DC0_H0_VM1", path: "/DC0/vm/DC0_H0_VM1", powerState: "poweredOn", template: false });
    const byPath = await call("vmGet", { vm: "/DC0/vm/DC0_H0_VM1" });
    expect(byPath.vm.name).toBe("DC0_H0_VM1");
  });

  it("never matches a VM by substring or case", async () => {
    expect((await failure(call("vmGet", { vm: "DC0_H0_VM" }))).code).toBe("IAAS_VM_NOT_FOUND");
    expect((await failure(call("vmGet", { vm: "dc0_h0_vm1" }))).code).toBe("IAAS_VM_NOT_FOUND");
    const e = await failure(call("vmGet", { vm: "/DC0/vm/nope" }));
    expect(e.message).toBe("No VM at `/DC0/vm/nope`. Check the path with `/iaas list`.");
  });

  it("refuses wildcards and bad requests at its own boundary, with a coded error", async () => {
    // Sent raw, past the client-side check that requestJson also makes.
    const reply = await nc.request("vcenter.vm.get", new TextEncoder().encode(JSON.stringify({ vm: "DC0_*" })), { timeout: 5000 });
    expect(reply.headers?.get("Nats-Service-Error-Code")).toBe("400");
    expect(reply.headers?.get("Nats-Service-Error")).toBe(
      "IAAS_BAD_REQUEST: bad vcenter.vm.get request: vm: must be an exact VM name or an inventory path: wildcards and control characters are not allowed",
    );
    const junk = await nc.request("vcenter.vm.power", new TextEncoder().encode("{"), { timeout: 5000 });
    expect(junk.headers?.get("Nats-Service-Error")).toBe("IAAS_BAD_REQUEST: the message is not valid JSON");
    expect((await failure(call("vmGet", { vm: "DC0_*" }))).code).toBe("IAAS_BAD_REQUEST");
  });

  it("powers a VM off and on, and the simulator agrees", async () => {
    const off = await call("vmPower", { vm: "DC0_C0_RP0_VM0", action: "off" });
    expect(off.vm.powerState).toBe("poweredOff");
    expect(await powerStateOf("DC0_C0_RP0_VM0")).toBe("poweredOff");
    const on = await call("vmPower", { vm: "DC0_C0_RP0_VM0", action: "on" });
    expect(on.vm.powerState).toBe("poweredOn");
    expect(await powerStateOf("DC0_C0_RP0_VM0")).toBe("poweredOn");
  });

  it("says clearly when the VM is already in that state", async () => {
    const e = await failure(call("vmPower", { vm: "DC0_C0_RP0_VM1", action: "on" }));
    expect(e.code).toBe("IAAS_INVALID_POWER_STATE");
    expect(e.message).toBe("Cannot power on: `DC0_C0_RP0_VM1` is already powered on.");
  });

  it("refuses to power on a template", async () => {
    const e = await failure(call("vmPower", { vm: "tmpl-ubuntu-22.04", action: "on" }));
    expect(e.code).toBe("IAAS_INVALID_STATE");
  });

  it("suspends and resets; refuses to suspend a VM that is off", async () => {
    expect((await call("vmPower", { vm: "DC0_H0_VM1", action: "reset" })).vm.powerState).toBe("poweredOn");
    expect((await call("vmPower", { vm: "DC0_H0_VM1", action: "suspend" })).vm.powerState).toBe("suspended");
    expect((await call("vmPower", { vm: "DC0_H0_VM1", action: "on" })).vm.powerState).toBe("poweredOn");
    await call("vmPower", { vm: "DC0_H0_VM1", action: "off" });
    const e = await failure(call("vmPower", { vm: "DC0_H0_VM1", action: "suspend" }));
    expect(e.message).toBe("Cannot suspend: `DC0_H0_VM1` is powered off.");
    await call("vmPower", { vm: "DC0_H0_VM1", action: "on" });
  });

  it("shuts down through VMware Tools and waits until the VM is off", async () => {
    const r = await call("vmPower", { vm: "DC0_H0_VM0", action: "shutdown" });
    expect(r.vm.powerState).toBe("poweredOff");
    await call("vmPower", { vm: "DC0_H0_VM0", action: "on" });
  });

  it("reports reboot as not supported by this vCenter instead of resetting", async () => {
    const e = await failure(call("vmPower", { vm: "DC0_H0_VM0", action: "reboot" }));
    expect(e.code).toBe("IAAS_NOT_SUPPORTED");
    expect(await powerStateOf("DC0_H0_VM0")).toBe("poweredOn");
  });

  it("refuses guest shutdown when VMware Tools is not running", async () => {
    // A VM made here has no tools (the demo VMs have them).
    const vm = new VirtualMachine(observer, (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))!);
    await (await vm.clone((await observer.searchIndex.findByInventoryPath("/DC0/vm"))!, "no-tools", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 });
    await call("vmPower", { vm: "no-tools", action: "on" });
    const e = await failure(call("vmPower", { vm: "no-tools", action: "shutdown" }));
    expect(e.code).toBe("IAAS_TOOLS_UNAVAILABLE");
  });

  it("lists every path when a name is ambiguous", async () => {
    const vm = new VirtualMachine(observer, (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))!);
    const folder = (await observer.searchIndex.findByInventoryPath("/DC0/vm"))!;
    await (await vm.clone(folder, "twin", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 });
    await (await vm.clone(folder, "twin", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 });
    const e = await failure(call("vmGet", { vm: "twin" }));
    expect(e.code).toBe("IAAS_VM_AMBIGUOUS");
    expect(e.message).toBe("2 VMs are named `twin`: `/DC0/vm/twin`, `/DC0/vm/twin`. Use the path.");
  });
});
