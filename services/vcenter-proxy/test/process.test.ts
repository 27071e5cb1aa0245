/**
 * Issue 3, as an operator sees it: the built proxy (dist/main.js) run as a real process with its
 * environment. A wrong password stops it with one line and one login attempt; readiness follows
 * vCenter going away and coming back, and requests meanwhile fail fast with a retryable code.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IaasError, ProxyEndpoints } from "@iaas/contracts";
import { requestJson } from "@iaas/runtime";
import { VimClient } from "@iaas/vsphere";
import { startNatsServer, startVcsim, waitUntil, type NatsServer, type Vcsim } from "@iaas/testkit";
import { jsonLine, loginEvents, requireBuiltProxy, runProxy, startCountingRelay, type ProxyProcess } from "./helpers.js";

let nats: NatsServer;
beforeAll(async () => {
  requireBuiltProxy();
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

describe("a wrong VCENTER_PASSWORD", () => {
  // Distinctive, so that any echo of it in the output is found.
  const PASSWORD = "Wr0ng-pa55word-7f3c91";
  let sim: Vcsim;
  beforeAll(async () => {
    sim = await startVcsim();
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it("exits non-zero with one line naming the refused login, without the password, after one Login", async () => {
    // The simulator posts no event for a refused Login, so a relay in front of it counts them.
    const relay = await startCountingRelay(sim.url);
    let proc: ProxyProcess | undefined;
    try {
      proc = runProxy({ VCENTER_URL: relay.url, VCENTER_USERNAME: sim.username, VCENTER_PASSWORD: PASSWORD, NATS_URL: nats.url, HEALTH_PORT: "0", LOG_LEVEL: "info" });
      const code = await proc.exited;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const out = proc.lines.filter((l) => l.trim() !== "");
      expect(out.join("\n")).not.toContain(PASSWORD);
      expect(out, out.join("\n")).toHaveLength(1);
      // Today a pino fatal line whose err names the fault; a plain one-line message would do as well.
      expect(out[0]).toMatch(/InvalidLogin/);
      expect(relay.counts.logins).toBe(1);
    } finally {
      await proc?.stop();
      await relay.close();
    }
  });
});

describe("readiness while vCenter goes away and comes back", () => {
  let sim: Vcsim;
  let proc: ProxyProcess;
  let nc: NatsConnection;
  let readyz: string;

  beforeAll(async () => {
    sim = await startVcsim();
    proc = runProxy({ VCENTER_URL: sim.url, VCENTER_USERNAME: sim.username, VCENTER_PASSWORD: sim.password, NATS_URL: nats.url, HEALTH_PORT: "0", LOG_LEVEL: "info" });
    // The first log line that names the health server (the service logs it once it serves).
    const ready = jsonLine(await proc.waitForLine("the health URL in the proxy's log", (l) => typeof jsonLine(l)?.health === "string"));
    readyz = `${String(ready?.health)}/readyz`;
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await proc?.stop();
    await sim?.stop();
  });

  const probe = async () => {
    const res = await fetch(readyz, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, boolean> } };
  };
  const vmGet = () => requestJson(nc, ProxyEndpoints.vmGet, { vm: "DC0_H0_VM0" }, { timeoutMs: 30_000 });

  it("is ready and serves while vCenter is up", async () => {
    expect(await probe()).toEqual({ status: 200, body: { ready: true, checks: { nats: true, vcenter: true } } });
    expect((await vmGet()).vm.name).toBe("DC0_H0_VM0");
  });

  it("goes 503 when the simulator stops; a request meanwhile gets IAAS_VCENTER_UNAVAILABLE (retryable), not a hang", async () => {
    await sim.stop();
    const down = await waitUntil("readyz to turn 503", async () => {
      const p = await probe();
      return p.status === 503 && p;
    });
    expect(down.body).toEqual({ ready: false, checks: { nats: true, vcenter: false } });
    // The 30 s request timeout would give IAAS_TIMEOUT: a hang fails this test by its code, not by a clock.
    const err = await vmGet().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IaasError);
    expect((err as IaasError).code).toBe("IAAS_VCENTER_UNAVAILABLE");
    expect((err as IaasError).retryable).toBe(true);
    expect(proc.child.exitCode).toBeNull();
  });

  it("is ready again when the simulator is back on the same port, after logging in to the new one once", async () => {
    await sim.restart();
    await waitUntil("readyz to turn 200 again", async () => (await probe()).status === 200);
    expect((await vmGet()).vm).toMatchObject({ name: "DC0_H0_VM0", powerState: "poweredOn" });
    // A restarted simulator is a new vCenter: the old session is unknown there (NotAuthenticated).
    const observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-test-observer" });
    try {
      const proxyLogins = (await loginEvents(observer)).filter((e) => e.userAgent === "iaas-vsphere");
      expect(proxyLogins).toHaveLength(1);
    } finally {
      await observer.logout();
    }
  });
});

describe("at start, version 1's owners move into the custom attribute", () => {
  let sim: Vcsim;
  let observer: VimClient;
  beforeAll(async () => {
    sim = await startVcsim();
    observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  });
  afterAll(async () => {
    await observer?.logout();
    await sim?.stop();
  });

  it("copies extraConfig iaas.owner into iaas.owner and logs how many; a second start finds none to copy", async () => {
    const vm = (await observer.searchIndex.findByInventoryPath("/DC0/vm/DC0_H0_VM1"))!;
    await (await observer.vm(vm).reconfigure({ extraConfig: [{ key: "iaas.owner", value: "UV1OWNER" }] })).wait({ timeoutMs: 10_000 });
    const env = { VCENTER_URL: sim.url, VCENTER_USERNAME: sim.username, VCENTER_PASSWORD: sim.password, NATS_URL: nats.url, HEALTH_PORT: "0", LOG_LEVEL: "info" };
    const migrated = async () => {
      const proc = runProxy(env);
      try {
        const line = await proc.waitForLine("the migration's log line", (l) => /copied into the custom attribute/.test(l));
        return jsonLine(line)?.migrated;
      } finally {
        await proc.stop();
      }
    };
    expect(await migrated()).toBe(1);
    const defs = await observer.customFieldsManager.field();
    const key = defs.find((d) => d.name === "iaas.owner")!.key;
    const [r] = await observer.retrieve([vm], ["customValue"]);
    expect(JSON.stringify(r!.props.customValue)).toContain("UV1OWNER");
    expect(defs.find((d) => d.key === key)?.managedObjectType).toBe("VirtualMachine");
    expect(await migrated()).toBe(0);
  });
});
