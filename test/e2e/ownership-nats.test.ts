import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Streams, Subjects, type Command, type FinalResult } from "@iaas/contracts";
import { jetstreamFor, openBucket } from "@iaas/runtime";
import { VmProps, parseCustomValues } from "@iaas/vsphere";
import { waitUntil } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";
import { inventory, makeFolder, natsId, now, rawClone } from "./helpers.js";

/**
 * Whose VM it is, on the NATS path: commands published as the gateway publishes them (the gateway
 * checks first; power and vm-lifecycle check again, and this is what they answer on their own).
 * The owner and team live in vCenter as the custom attributes iaas.owner and iaas.team, read back
 * here with the test's own session.
 */
const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes, quota]
  operator: ["power.*"]
  builder: [create, clone, deploy, resize, delete, owner]
  admin: ["*"]
bindings:
  - { role: viewer, everyone: true }
  - { role: operator, everyone: true }
  - { role: builder, everyone: true }
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
  medium: { cpu: 2, memoryGB: 4, diskGB: 40 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
teams:
  platform: { users: [UCAROL, UERIN] }
protected:
  names: ["prod-*"]
  folders: [/DC0/vm/vault]
quotas:
  users: { UQUOTA1: { vms: 1 } }
  teams: { platform: { cpu: 2 } }
confirm: []
rateLimit: { perUserPerMinute: 10000 }
`;

/**
 * Set while the proxy's reads of a VM's parent chain (its inventory path) are to fail as a
 * connection that drops would: a real failure of a real SOAP call, met by the proxy's own code.
 */
let breakPaths = false;
const vcenterFetch: typeof fetch = async (url, init) => {
  if (breakPaths && String(init?.body).includes("<name>toParent</name>")) throw new TypeError("fetch failed (the test cut the path read)");
  return fetch(url, init);
};

describe("ownership on the NATS path", () => {
  let sys: System;
  beforeAll(async () => {
    // Without the live index the proxy reads every path from vCenter, so the fault above reaches it.
    sys = await startSystem({ policyYaml: POLICY, admins: "UADMIN1", vcenterFetch, liveIndex: false });
    await makeFolder(sys, "vault");
    await rawClone(sys, "vault-01", { folder: "/DC0/vm/vault", powerOn: true });
    await sys.adopt("vault-01", "UALICE");
  });
  afterAll(async () => {
    breakPaths = false;
    await sys?.stop();
  });

  type Draft<C> = C extends Command ? Omit<C, "id" | "issuedAt" | "actor"> : never;
  const as = (userId: string, c: Draft<Command>): Command => ({ id: natsId("own"), issuedAt: now(), actor: { userId, via: "nats" }, ...c }) as Command;
  async function publish(cmd: Command): Promise<FinalResult> {
    const { js, jsm } = await jetstreamFor(sys.nc);
    await js.publish(Subjects.command(cmd.area, cmd.action), new TextEncoder().encode(JSON.stringify(cmd)), { msgID: cmd.id });
    return waitUntil(
      `the final result of ${cmd.id}`,
      async () => {
        const m = await jsm.streams.getMessage(Streams.results.name, { last_by_subj: Subjects.result(cmd.id) }).catch(() => null);
        const r = m?.json<FinalResult>();
        return r && r.status !== ("progress" as string) ? r : undefined;
      },
      30_000,
    );
  }
  const off = (user: string, vm: string) => publish(as(user, { area: "power", action: "off", vm }));
  const on = (user: string, vm: string) => publish(as(user, { area: "power", action: "on", vm }));
  const stateOf = async (vm: string) => (await inventory(sys)).get(vm)?.powerState;

  /** iaas.owner and iaas.team of a VM as vCenter holds them, read with the test's own session. */
  async function attributes(vm: string): Promise<{ owner?: string; team?: string }> {
    const c = sys.observer;
    const defs = await c.customFieldsManager.field();
    const ref = await c.searchIndex.findByInventoryPath(vm.startsWith("/") ? vm : `/DC0/vm/${vm}`);
    const [r] = await c.retrieve([ref!], [VmProps.customValue]);
    const values = parseCustomValues(r!.props[VmProps.customValue]);
    const get = (name: string) => values.get(defs.find((d) => d.name === name)!.key) || undefined;
    const owner = get("iaas.owner");
    const team = get("iaas.team");
    return { ...(owner ? { owner } : {}), ...(team ? { team } : {}) };
  }

  it("a create records its owner in vCenter; another user cannot power it off, resize or delete it; the owner and an admin can", async () => {
    const made = await publish(as("UALICE", { area: "vm", action: "create", name: "alice-01" }));
    expect(made).toMatchObject({ status: "succeeded", facts: { code: "done", vm: "alice-01", owner: "UALICE" }, vm: { owner: "UALICE" } });
    expect(await attributes("alice-01")).toEqual({ owner: "UALICE" });
    await on("UALICE", "alice-01");
    expect(await stateOf("alice-01")).toBe("poweredOn");

    for (const cmd of [
      as("UBOB", { area: "power", action: "off", vm: "alice-01" }),
      as("UBOB", { area: "vm", action: "resize", vm: "alice-01", cpu: 2 }),
      as("UBOB", { area: "vm", action: "delete", vm: "alice-01" }),
    ]) {
      const r = await publish(cmd);
      expect(r, cmd.action).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
      expect(r.status === "failed" && r.error.message, cmd.action).toContain("`alice-01` belongs to <@UALICE>");
    }
    expect((await inventory(sys)).get("alice-01")).toMatchObject({ powerState: "poweredOn", cpu: 1, count: 1 });

    expect(await off("UALICE", "alice-01")).toMatchObject({ status: "succeeded", vm: { powerState: "poweredOff" } });
    expect(await publish(as("UADMIN1", { area: "vm", action: "resize", vm: "alice-01", cpu: 2 }))).toMatchObject({ status: "succeeded", vm: { numCpu: 2 } });
    expect(await on("UADMIN1", "alice-01")).toMatchObject({ status: "succeeded", vm: { powerState: "poweredOn" } });
  });

  it("a team VM: a member acts on it, a non-member may not; team= must be a known team the creator is in", async () => {
    const made = await publish(as("UCAROL", { area: "vm", action: "create", name: "team-01", team: "platform" }));
    expect(made).toMatchObject({ status: "succeeded", facts: { owner: "UCAROL", team: "platform" } });
    expect(await attributes("team-01")).toEqual({ owner: "UCAROL", team: "platform" });
    await on("UCAROL", "team-01");
    const bob = await off("UBOB", "team-01");
    expect(bob).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(bob.status === "failed" && bob.error.message).toContain("belongs to <@UCAROL> (team `platform`)");
    expect(await off("UERIN", "team-01")).toMatchObject({ status: "succeeded", vm: { powerState: "poweredOff" } });

    const outsider = await publish(as("UBOB", { area: "vm", action: "create", name: "sneaky-01", team: "platform" }));
    expect(outsider).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(outsider.status === "failed" && outsider.error.message).toContain("`team=platform`");
    const unknown = await publish(as("UCAROL", { area: "vm", action: "create", name: "nowhere-01", team: "nosuch" }));
    expect(unknown).toMatchObject({ status: "failed", error: { code: "IAAS_INVALID_ARGUMENT" } });
    expect(unknown.status === "failed" && unknown.error.message).toContain("`team=nosuch` is not a team");
    const inv = await inventory(sys);
    expect(inv.has("sneaky-01") || inv.has("nowhere-01")).toBe(false);
  });

  it("an unowned VM is admin-only until an owner command adopts it; the owner may hand it on, nobody else", async () => {
    const before = await off("UBOB", "DC0_H0_VM0");
    expect(before).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(before.status === "failed" && before.error.message).toContain("has no owner in IaaS");
    expect(await stateOf("DC0_H0_VM0")).toBe("poweredOn");
    // Nobody but an admin adopts it.
    expect(await publish(as("UBOB", { area: "vm", action: "owner", vm: "DC0_H0_VM0", owner: "UBOB" }))).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(await attributes("DC0_H0_VM0")).toEqual({});

    const adopt = as("UADMIN1", { area: "vm", action: "owner", vm: "DC0_H0_VM0", owner: "UBOB" });
    expect(await publish(adopt)).toMatchObject({ status: "succeeded", facts: { code: "done", vm: "DC0_H0_VM0", owner: "UBOB" } });
    expect(await attributes("DC0_H0_VM0")).toEqual({ owner: "UBOB" });
    // Audited like any command.
    const { jsm } = await jetstreamFor(sys.nc);
    const audit = await waitUntil("the adoption's audit record", async () => {
      const m = await jsm.streams.getMessage(Streams.audit.name, { last_by_subj: Subjects.audit("command") }).catch(() => null);
      const rec = m?.json<{ id: string; command: string; actor: { userId: string } }>();
      return rec?.id === adopt.id ? rec : undefined;
    });
    expect(audit).toMatchObject({ command: "vm.owner", actor: { userId: "UADMIN1" } });

    expect(await off("UBOB", "DC0_H0_VM0")).toMatchObject({ status: "succeeded" });
    // Alice may not take it; Bob, its owner, may give it to her, with a team.
    expect(await publish(as("UALICE", { area: "vm", action: "owner", vm: "DC0_H0_VM0", owner: "UALICE" }))).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    expect(await publish(as("UBOB", { area: "vm", action: "owner", vm: "DC0_H0_VM0", owner: "UALICE", team: "platform" }))).toMatchObject({ status: "succeeded", facts: { owner: "UALICE", team: "platform" } });
    expect(await attributes("DC0_H0_VM0")).toEqual({ owner: "UALICE", team: "platform" });
    expect(await on("UBOB", "DC0_H0_VM0")).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED" } });
    // The same again changes nothing; clearing the team does.
    expect(await publish(as("UALICE", { area: "vm", action: "owner", vm: "DC0_H0_VM0", owner: "UALICE", team: "platform" }))).toMatchObject({ status: "succeeded", facts: { code: "unchanged" } });
    expect(await publish(as("UALICE", { area: "vm", action: "owner", vm: "DC0_H0_VM0", team: null }))).toMatchObject({ status: "succeeded", facts: { code: "done", owner: "UALICE" } });
    expect(await attributes("DC0_H0_VM0")).toEqual({ owner: "UALICE" });
  });

  it("owner: bad input is refused with a specific error and changes nothing", async () => {
    const cases: [Draft<Command>, string, string][] = [
      [{ area: "vm", action: "owner", vm: "tmpl-ubuntu-22.04", owner: "UBOB" }, "IAAS_INVALID_ARGUMENT", "is a template"],
      [{ area: "vm", action: "owner", vm: "DC0_H0_VM1" }, "IAAS_INVALID_ARGUMENT", "Say who gets the VM"],
      [{ area: "vm", action: "owner", vm: "DC0_H0_VM1", team: "nosuch" }, "IAAS_INVALID_ARGUMENT", "`team=nosuch` is not a team"],
      [{ area: "vm", action: "owner", vm: "vault-01", owner: "UBOB" }, "IAAS_PROTECTED_VM", "protected folder"],
      [{ area: "vm", action: "owner", vm: "no-such-vm", owner: "UBOB" }, "IAAS_VM_NOT_FOUND", "no-such-vm"],
    ];
    for (const [c, code, words] of cases) {
      const r = await publish(as("UADMIN1", c));
      expect(r, JSON.stringify(c)).toMatchObject({ status: "failed", error: { code } });
      expect(r.status === "failed" && r.error.message, JSON.stringify(c)).toContain(words);
    }
    expect(await attributes("DC0_H0_VM1")).toEqual({});
    expect(await attributes("tmpl-ubuntu-22.04")).toEqual({});
    expect(await attributes("/DC0/vm/vault/vault-01")).toEqual({ owner: "UALICE" });
  });

  it("quotas count from the custom attributes: per user (a clone is as big as its source) and per team", async () => {
    expect(await publish(as("UQUOTA1", { area: "vm", action: "create", name: "q-01" }))).toMatchObject({ status: "succeeded" });
    const clone = await publish(as("UQUOTA1", { area: "vm", action: "clone", source: "q-01", name: "q-02" }));
    expect(clone).toMatchObject({ status: "failed", error: { code: "IAAS_QUOTA_EXCEEDED" } });
    expect(clone.status === "failed" && clone.error.message).toContain("you use 1 of 1 VM");
    // platform has 2 vCPU: team-01 (small, 1 vCPU) uses one; a medium (2 vCPU) does not fit.
    const team = await publish(as("UERIN", { area: "vm", action: "create", name: "team-02", size: "medium", team: "platform" }));
    expect(team).toMatchObject({ status: "failed", error: { code: "IAAS_QUOTA_EXCEEDED" } });
    expect(team.status === "failed" && team.error.message).toContain("Over the quota of team `platform`: it uses 1 of 2 vCPU");
    expect(await publish(as("UERIN", { area: "vm", action: "create", name: "team-03", team: "platform" }))).toMatchObject({ status: "succeeded", facts: { team: "platform" } });
    const inv = await inventory(sys);
    expect([inv.has("q-02"), inv.has("team-02"), inv.has("team-03")]).toEqual([false, false, true]);
  });

  it("fail closed: when the proxy cannot read a VM's path, a power off in a protected folder is refused (retryable), never done", async () => {
    breakPaths = true;
    const cmd = as("UALICE", { area: "power", action: "off", vm: "vault-01" });
    const { js } = await jetstreamFor(sys.nc);
    await js.publish(Subjects.command("power", "off"), new TextEncoder().encode(JSON.stringify(cmd)), { msgID: cmd.id });
    const state = await openBucket(sys.nc, "commandState");
    // The power service's guard could not decide: it refused with a retryable error and will try again.
    await waitUntil("the power service to put the command back for a retry", async () => {
      const e = await state.get(cmd.id);
      return e?.string().includes('"retrying"') ? e : undefined;
    });
    expect(await stateOf("vault-01")).toBe("poweredOn");
    // Once the path can be read again, the retry finds the VM in the protected folder: refused for good.
    breakPaths = false;
    const r = await publish(cmd);
    expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
    expect(await stateOf("vault-01")).toBe("poweredOn");
  });

  it("fail closed, to the end: a path that stays unreadable ends in a retryable IAAS_VCENTER_UNAVAILABLE, and the VM stays on", async () => {
    breakPaths = true;
    try {
      const r = await off("UALICE", "vault-01");
      expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_VCENTER_UNAVAILABLE", retryable: true } });
      expect(r.status === "failed" && r.error.message).toContain("Cannot tell whether `vault-01` is in a protected folder");
    } finally {
      breakPaths = false;
    }
    expect(await stateOf("vault-01")).toBe("poweredOn");
  }, 60_000);
});
