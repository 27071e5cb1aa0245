import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { requestJson } from "@iaas/runtime";
import { VimClient, VirtualMachine } from "@iaas/vsphere";
import { startNatsServer, startVcsim, type NatsServer, type Vcsim } from "@iaas/testkit";
import { runProxy, type ProxyProcess } from "./helpers.js";

/** A second vCenter is a configuration entry: VCENTERS names it, VCENTER_<ID>_* configure it. */
describe("vcenter-proxy serving two vCenters", () => {
  let nats: NatsServer;
  let main: Vcsim;
  let lab: Vcsim;
  let proxy: ProxyProcess;
  let nc: NatsConnection;

  beforeAll(async () => {
    [nats, main, lab] = await Promise.all([startNatsServer(), startVcsim(), startVcsim({ password: "lab-secret" })]);
    // Something only the lab vCenter has.
    const c = await VimClient.connect({ url: lab.url, username: lab.username, password: lab.password });
    const src = new VirtualMachine(c, (await c.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM0"))!);
    await (await src.clone((await c.searchIndex.findByInventoryPath("/DC0/vm"))!, "lab-only", { location: {}, template: false, powerOn: false })).wait({ timeoutMs: 30_000 });
    await c.logout();
    proxy = runProxy({
      NATS_URL: nats.url,
      HEALTH_PORT: "0",
      VCENTER_URL: main.url,
      VCENTER_USERNAME: main.username,
      VCENTER_PASSWORD: main.password,
      VCENTERS: "lab",
      VCENTER_LAB_URL: lab.url,
      VCENTER_LAB_USERNAME: lab.username,
      VCENTER_LAB_PASSWORD: lab.password,
    });
    await proxy.waitForLine("the proxy to be ready", (l) => l.includes("vcenter-proxy ready"));
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await proxy?.stop();
    await Promise.all([nats?.dispose(), main?.stop(), lab?.stop()]);
  });

  const get = (req: { vm: string; vcenter?: string }) => requestJson(nc, ProxyEndpoints.vmGet, req, { timeoutMs: 15_000 });

  it("routes a request to the vCenter it names, and an unnamed one to the default", async () => {
    expect((await get({ vm: "lab-only", vcenter: "lab" })).vm.name).toBe("lab-only");
    await expect(get({ vm: "lab-only" })).rejects.toMatchObject({ code: "IAAS_VM_NOT_FOUND" });
    expect((await get({ vm: "DC0_H0_VM1" })).vm.name).toBe("DC0_H0_VM1");
  });

  it("refuses a vCenter it does not serve, naming the ones it does", async () => {
    const err = await get({ vm: "DC0_H0_VM1", vcenter: "nope" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IaasError);
    expect((err as IaasError).message).toBe('unknown vCenter "nope"; this proxy serves: default, lab');
  });

  it("a second vCenter missing its variables stops the proxy naming them", async () => {
    const p = runProxy({ NATS_URL: nats.url, HEALTH_PORT: "0", VCENTER_URL: main.url, VCENTER_USERNAME: "u", VCENTER_PASSWORD: "p", VCENTERS: "dr-site" });
    expect(await p.exited).toBe(1);
    expect(p.lines.join("\n")).toContain("VCENTER_DR_SITE_URL: is required");
    expect(p.lines.join("\n")).toContain("VCENTER_DR_SITE_PASSWORD: is required");
  });
});
