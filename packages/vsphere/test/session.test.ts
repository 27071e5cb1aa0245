import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VimClient, VimFault, isVimFault } from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;

beforeAll(async () => {
  sim = await startVcsim();
});

afterAll(async () => {
  await sim?.stop();
});

describe("login", () => {
  it("reads the ServiceContent and logs in once", async () => {
    const c = await connect(sim);
    try {
      expect(c.serviceContent.about.apiType).toBe("VirtualCenter");
      expect(c.serviceContent.rootFolder.type).toBe("Folder");
      expect(c.session?.userName).toBe(sim.username);
      expect(c.stats.logins).toBe(1);
      const current = await c.sessionManager.currentSession();
      expect(current?.key).toBe(c.session?.key);
      expect(await c.currentTime()).toMatch(/^\d{4}-\d\d-\d\dT/);
    } finally {
      await c.logout();
    }
  });

  it("a bad password is an InvalidLogin fault, tried once", async () => {
    const c = new VimClient({ url: sim.url, username: sim.username, password: "wrong" });
    const err = await rejection(c.connect());
    expect(err).toBeInstanceOf(VimFault);
    expect((err as VimFault).faultType).toBe("InvalidLogin");
    expect((err as VimFault).retryable).toBe(false);
    expect(c.stats.logins).toBe(1);
    expect(c.stats.faults).toBe(1);
    // Never logged in: later calls are not an excuse to try the password again.
    const again = await rejection(c.currentTime());
    expect(isVimFault(again, "NotAuthenticated")).toBe(true);
    expect(c.stats.logins).toBe(1);
  });

  it("logout ends the session and disables re-login", async () => {
    const c = await connect(sim);
    const key = c.session!.key;
    const admin = await connect(sim);
    try {
      await c.logout();
      expect(await admin.sessionManager.sessionIsActive(key, sim.username)).toBe(false);
      const err = await rejection(c.currentTime());
      expect(isVimFault(err, "NotAuthenticated")).toBe(true);
      expect(c.stats.relogins).toBe(0);
    } finally {
      await admin.logout();
    }
  });
});

describe("SessionManager", () => {
  it("login and logout are available raw; currentSession follows them", async () => {
    const c = await connect(sim);
    const admin = await connect(sim);
    try {
      const first = c.session!.key;
      await c.sessionManager.logout();
      expect(await admin.sessionManager.sessionIsActive(first, sim.username)).toBe(false);
      const s = await c.sessionManager.login(sim.username, sim.password);
      expect(s.key).not.toBe(first);
      expect(s.userName).toBe(sim.username);
      expect(await admin.sessionManager.sessionIsActive(s.key, sim.username)).toBe(true);
      expect((await c.sessionManager.currentSession())?.key).toBe(s.key);
      // A raw login is not a re-login: the client's own bookkeeping did not run.
      expect(c.stats.relogins).toBe(0);
      const bad = await rejection(admin.sessionManager.login(sim.username, "wrong"));
      expect(isVimFault(bad, "InvalidLogin")).toBe(true);
    } finally {
      await c.logout();
      await admin.logout();
    }
  });
});

describe("re-login after TerminateSession", () => {
  it("a method call logs in again transparently", async () => {
    const logged: string[] = [];
    const victim = await connect(sim, { logger: { info: (_o, msg) => logged.push(String(msg)) } });
    const admin = await connect(sim);
    try {
      const oldKey = victim.session!.key;
      await admin.sessionManager.terminateSession([oldKey]);
      expect(await admin.sessionManager.sessionIsActive(oldKey, sim.username)).toBe(false);

      expect(await victim.currentTime()).toMatch(/^\d{4}-/);
      expect(victim.stats.relogins).toBe(1);
      expect(victim.stats.logins).toBe(2);
      expect(logged.filter((m) => m.includes("logging in again"))).toHaveLength(1);
      expect(victim.session!.key).not.toBe(oldKey);
      expect(await admin.sessionManager.sessionIsActive(victim.session!.key, sim.username)).toBe(true);
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("RetrievePropertiesEx answering with a NotAuthenticated missingSet also triggers it", async () => {
    const victim = await connect(sim);
    const admin = await connect(sim);
    try {
      const vm = await mustFind(victim, "/DC0/vm/DC0_H0_VM0");
      await admin.sessionManager.terminateSession([victim.session!.key]);
      // The first request after the termination is RetrievePropertiesEx, which does not fault.
      const [r] = await victim.retrieve([vm], ["name"]);
      expect(r?.props.name).toBe("DC0_H0_VM0");
      expect(r?.missing).toEqual({});
      expect(victim.stats.relogins).toBe(1);
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("retrieveContainer survives it (the view is created in the new session)", async () => {
    const victim = await connect(sim);
    const admin = await connect(sim);
    try {
      await admin.sessionManager.terminateSession([victim.session!.key]);
      const vms = await victim.retrieveContainer("VirtualMachine", ["name"]);
      expect(vms.map((v) => v.props.name)).toContain("DC0_H0_VM0");
      expect(victim.stats.relogins).toBe(1);
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("a session lost between CreateContainerView and RetrievePropertiesEx: the view is recreated", async () => {
    const admin = await connect(sim);
    let victim: VimClient | undefined;
    let armed = true;
    // A fetch that ends the session right after the view was created: the real server, a real race.
    const hook: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      if (armed && String(init?.body).includes("<CreateContainerView ")) {
        armed = false;
        await admin.sessionManager.terminateSession([victim!.session!.key]);
      }
      return res;
    };
    victim = await connect(sim, { fetch: hook });
    try {
      const vms = await victim.retrieveContainer("VirtualMachine", ["name"]);
      expect(armed).toBe(false);
      expect(vms.map((v) => v.props.name)).toContain("DC0_H0_VM0");
      expect(victim.stats.relogins).toBe(1);
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("a session lost while Task.wait sets up its collector: the wait starts over", async () => {
    const admin = await connect(sim);
    let victim: VimClient | undefined;
    let armed = true;
    const hook: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      if (armed && String(init?.body).includes("<CreatePropertyCollector ")) {
        armed = false;
        await admin.sessionManager.terminateSession([victim!.session!.key]);
      }
      return res;
    };
    victim = await connect(sim, { fetch: hook });
    try {
      const vm = await mustFind(victim, "/DC0/vm/DC0_H0_VM1");
      const task = await victim.vm(vm).suspend();
      await task.wait({ timeoutMs: 10_000, firstRead: false });
      expect(armed).toBe(false);
      expect(victim.stats.relogins).toBe(1);
      await (await victim.vm(vm).powerOn()).wait();
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("50 concurrent calls share exactly one re-login", async () => {
    const victim = await connect(sim, { concurrency: 8 });
    const admin = await connect(sim);
    try {
      await admin.sessionManager.terminateSession([victim.session!.key]);
      const vm = await mustFind(admin, "/DC0/vm/DC0_H0_VM0");
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          i % 2 === 0 ? victim.currentTime() : victim.retrieve([vm], ["name"]).then((r) => r[0]?.props.name),
        ),
      );
      expect(results.filter((r) => r === "DC0_H0_VM0")).toHaveLength(25);
      expect(victim.stats.relogins).toBe(1);
      expect(victim.stats.logins).toBe(2);
    } finally {
      await victim.logout();
      await admin.logout();
    }
  });

  it("terminating your own session is InvalidArgument", async () => {
    const c = await connect(sim);
    try {
      const err = await rejection(c.sessionManager.terminateSession([c.session!.key]));
      expect(isVimFault(err, "InvalidArgument")).toBe(true);
    } finally {
      await c.logout();
    }
  });
});
