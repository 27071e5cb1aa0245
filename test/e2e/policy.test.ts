import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Command } from "@iaas/contracts";
import { startSystem, type System } from "./harness.js";
import { actor, buttonsOf, click, fingerprint, finalPost, idOf, inventory, makeFolder, natsId, now, publishCommand, rawClone, textOf } from "./helpers.js";

/**
 * The policy holds on every path: the same refusals whether a command comes from Slack (checked
 * by the gateway before publishing) or is published straight to NATS (checked by power and
 * vm-lifecycle in their authorize hook), and nothing changes in vCenter when it refuses.
 */
const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes]
  operator: ["power.*:any"]
  builder: [create, "clone:any", deploy, "resize:any", delete]
  admin: ["*"]
bindings:
  - { role: viewer, everyone: true }
  - { role: operator, everyone: true }
  - { role: builder, users: [U0001, U0002, U0QUOTA] }
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
  large: { cpu: 4, memoryGB: 8, diskGB: 80 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
protected:
  names: ["prod-*"]
  folders: [/DC0/vm/locked]
quotas:
  vmsPerUser: 10
  users: { U0QUOTA: 1 }
confirm: [delete, "power.reset"]
rateLimit: { perUserPerMinute: 10000 }
`;

describe("policy on every path", () => {
  let sys: System;
  beforeAll(async () => {
    sys = await startSystem({ policyYaml: POLICY });
    await rawClone(sys, "prod-db", { powerOn: true });
    await makeFolder(sys, "locked");
    await rawClone(sys, "app-locked", { folder: "/DC0/vm/locked", powerOn: true });
    await rawClone(sys, "twin");
    await rawClone(sys, "twin");
    // VMs made outside the product have no owner, and unowned VMs are admin-only: U0001 adopts
    // the ones the tests act on as a builder or operator.
    await sys.adopt(["prod-db", "app-locked", "DC0_H0_VM0"], "U0001");
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const REQ = /\(request `r-[a-z2-7]{24}`\)/;
  // Omit per member of the union (plain Omit over a union keeps only the common keys).
  type Draft<C> = C extends Command ? Omit<C, "id" | "issuedAt"> : never;
  const cmd = (c: Draft<Command>): Command => ({ id: natsId("op"), issuedAt: now(), ...c }) as Command;

  describe("a protected VM (prod-*) cannot be deleted, powered off or resized, from Slack or from NATS", () => {
    it("Slack: refused at once with the reason and the request id, for an admin too", async () => {
      const before = await fingerprint(sys);
      const cases: [string, string][] = [
        ["power off prod-db", "powered off"],
        ["power suspend prod-db", "suspended"],
        ["power shutdown prod-db", "shut down"],
        ["resize prod-db cpu=2", "resized"],
        ["delete prod-db", "deleted"],
      ];
      for (const [text, done] of cases) {
        const r = await sys.slash(text, { user_id: "UADMIN1" });
        expect(textOf(r.json), text).toBe(`:warning: \`prod-db\` is protected by policy (its name matches \`prod-*\`): it cannot be ${done} from Slack. Ask an IT admin. (request \`${idOf(r.json)}\`)`);
        expect(buttonsOf(r.json)).toEqual([]);
      }
      expect(await fingerprint(sys)).toBe(before);
    });

    it("NATS: power and vm-lifecycle refuse the same commands with the same words", async () => {
      const before = await fingerprint(sys);
      const off = await publishCommand(sys, cmd({ area: "power", action: "off", vm: "prod-db", actor: actor("UADMIN1") }));
      expect(off).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM", message: "`prod-db` is protected by policy (its name matches `prod-*`): it cannot be powered off over NATS. Ask an IT admin." } });
      const del = await publishCommand(sys, cmd({ area: "vm", action: "delete", vm: "prod-db", actor: actor("UADMIN1") }));
      expect(del).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
      const resize = await publishCommand(sys, cmd({ area: "vm", action: "resize", vm: "prod-db", cpu: 2, actor: actor("U0001") }));
      expect(resize).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
      const byPath = await publishCommand(sys, cmd({ area: "power", action: "reset", vm: "/DC0/vm/prod-db", actor: actor("U0001") }));
      expect(byPath).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
      expect(await fingerprint(sys)).toBe(before);
      expect((await inventory(sys)).get("prod-db")).toMatchObject({ powerState: "poweredOn" });
    });

    it("power on and clone of a protected VM stay allowed", async () => {
      const r = await sys.slash("clone prod-db copy-of-prod");
      expect(await finalPost(sys, r.responseUrl)).toContain("Cloned `prod-db` to `copy-of-prod`");
    });
  });

  describe("a VM in a protected folder: the services resolve its inventory path", () => {
    it("power off by name: the gateway looks the VM up and refuses in the ack, with its folder", async () => {
      const r = await sys.slash("power off app-locked");
      expect(textOf(r.json)).toBe(`:warning: \`app-locked\` is protected by policy (it is in the protected folder \`/DC0/vm/locked\`): it cannot be powered off from Slack. Ask an IT admin. (request \`${idOf(r.json)}\`)`);
      expect(sys.slack.postsTo(r.responseUrl)).toEqual([]);
      expect((await inventory(sys)).get("app-locked")).toMatchObject({ powerState: "poweredOn" });
    });

    it("by inventory path the gateway refuses at once; delete is refused before the buttons", async () => {
      const r = await sys.slash("power off /DC0/vm/locked/app-locked");
      expect(textOf(r.json)).toMatch(/^:warning: `app-locked` is protected by policy \(it is in the protected folder `\/DC0\/vm\/locked`\)/);
      const d = await sys.slash("delete app-locked", { user_id: "UADMIN1" });
      expect(textOf(d.json)).toMatch(/^:warning: `app-locked` is protected by policy \(it is in the protected folder/);
      expect(buttonsOf(d.json)).toEqual([]);
    });

    it("NATS: resize and delete by name are refused by vm-lifecycle", async () => {
      const resize = await publishCommand(sys, cmd({ area: "vm", action: "resize", vm: "app-locked", memoryGB: 4, actor: actor("UADMIN1") }));
      expect(resize).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
      const del = await publishCommand(sys, cmd({ area: "vm", action: "delete", vm: "app-locked", actor: actor("UADMIN1") }));
      expect(del).toMatchObject({ status: "failed", error: { code: "IAAS_PROTECTED_VM" } });
      expect((await inventory(sys)).get("app-locked")).toMatchObject({ powerState: "poweredOn", count: 1 });
    });
  });

  describe("roles, names, sizes, limits, quotas and ownership: the same answer from NATS as from Slack", () => {
    it("a user without the builder role cannot create", async () => {
      const slack = await sys.slash("create viewer-vm", { user_id: "U0VIEW" });
      const message = "You are not allowed to run `create`: it needs the builder or admin role, and you have viewer, operator. Ask an IT admin.";
      expect(textOf(slack.json)).toBe(`:warning: ${message} (request \`${idOf(slack.json)}\`)`);
      const nats = await publishCommand(sys, cmd({ area: "vm", action: "create", name: "viewer-vm", actor: actor("U0VIEW") }));
      expect(nats).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED", message } });
      expect((await inventory(sys)).has("viewer-vm")).toBe(false);
    });

    it("names that break the naming rule, reserved names and unknown sizes", async () => {
      const before = await fingerprint(sys);
      const cases: [Partial<Command> & { name: string; size?: string }, string, string][] = [
        [{ name: "Bad_Name" }, "IAAS_NAME_NOT_ALLOWED", "`Bad_Name` cannot be used as a VM name: use 2 to 63 lowercase letters, digits and dashes, starting with a letter (for example web-01)."],
        [{ name: "prod-new" }, "IAAS_NAME_NOT_ALLOWED", "`prod-new` cannot be used as a VM name: names matching `prod-*` are reserved for protected VMs."],
        [{ name: "ok-name", size: "huge" }, "IAAS_UNKNOWN_SIZE", "There is no size `huge`. Sizes: `small` (1 vCPU, 2 GB memory, 16 GB disk), `large` (4 vCPU, 8 GB memory, 80 GB disk)."],
      ];
      for (const [c, code, message] of cases) {
        const slack = await sys.slash(`create ${c.name}${c.size ? ` ${c.size}` : ""}`);
        expect(textOf(slack.json)).toBe(`:warning: ${message} (request \`${idOf(slack.json)}\`)`);
        const nats = await publishCommand(sys, cmd({ area: "vm", action: "create", name: c.name, ...(c.size ? { size: c.size } : {}), actor: actor("U0001") }));
        expect(nats).toMatchObject({ status: "failed", error: { code, message } });
      }
      expect(await fingerprint(sys)).toBe(before);
    });

    it("resize beyond the limits over NATS", async () => {
      const r = await publishCommand(sys, cmd({ area: "vm", action: "resize", vm: "twin", cpu: 64, actor: actor("U0001") }));
      expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_LIMIT_EXCEEDED", message: "`cpu=64` is more than the policy allows: at most 8 vCPU." } });
    });

    it("a quota stops the next create, from Slack and from NATS", async () => {
      const first = await sys.slash("create quota-1", { user_id: "U0QUOTA" });
      expect(await finalPost(sys, first.responseUrl)).toContain("Created `quota-1`");
      const second = await sys.slash("create quota-2", { user_id: "U0QUOTA" });
      // Refused at the door, in the ack, with the figures.
      expect(textOf(second.json)).toMatch(/^:warning: Over your quota: you use 1 of 1 VM; this needs 1 more VM\. Delete a VM you no longer need, or ask an IT admin to raise your quota \(`\/iaas quota` shows it\)\. \(request `r-[a-z2-7]{24}`\)$/);
      const nats = await publishCommand(sys, cmd({ area: "vm", action: "deploy", template: "tmpl-ubuntu-22.04", name: "quota-3", actor: actor("U0QUOTA") }));
      expect(nats).toMatchObject({ status: "failed", error: { code: "IAAS_QUOTA_EXCEEDED" } });
      const inv = await inventory(sys);
      expect(inv.has("quota-1")).toBe(true);
      expect(inv.has("quota-2")).toBe(false);
      expect(inv.has("quota-3")).toBe(false);
    });

    it("a builder cannot delete another user's VM over NATS either", async () => {
      const r = await publishCommand(sys, cmd({ area: "vm", action: "delete", vm: "quota-1", actor: actor("U0002") }));
      expect(r).toMatchObject({ status: "failed", error: { code: "IAAS_NOT_ALLOWED", message: "`quota-1` belongs to <@U0QUOTA>; you may not delete it: ask them or an IT admin." } });
      expect((await inventory(sys)).has("quota-1")).toBe(true);
    });

    it("a redelivered create (the same command id again) makes no second VM", async () => {
      const c = cmd({ area: "vm", action: "create", name: "once-only", actor: actor("U0001") });
      expect(await publishCommand(sys, c)).toMatchObject({ status: "succeeded" });
      expect(await publishCommand(sys, { ...c })).toMatchObject({ status: "succeeded" });
      expect((await inventory(sys)).get("once-only")).toMatchObject({ count: 1 });
    });
  });

  describe("bad input: a specific message with the request id, and no change in vCenter", () => {
    const long = "a".repeat(300);
    const cases: [string, RegExp][] = [
      ["power off web-*", /^:warning: `web-\*` is not a valid VM name \(must be an exact VM name or an inventory path: wildcards and control characters are not allowed\)\. REQ\nUsage: `\/iaas power /],
      ["delete ?", /^:warning: `\?` is not a valid VM name/],
      ["info DC0_H0_VM[01]", /^:warning: `DC0_H0_VM\[01\]` is not a valid VM name/],
      ["info no-such-vm", /^:warning: No VM named `no-such-vm`\. Names are exact and case-sensitive; see `\/iaas list`\. REQ$/],
      ["info dc0_h0_vm0", /^:warning: No VM named `dc0_h0_vm0`\./],
      ["info twin", /^:warning: 2 VMs are named `twin`: `\/DC0\/vm\/twin`, `\/DC0\/vm\/twin`\. Use the path\. REQ$/],
      ["delete twin", /^:warning: 2 VMs are named `twin`/],
      ["create Web_01", /^:warning: `Web_01` cannot be used as a VM name: use 2 to 63 lowercase letters/],
      ["create ｗｅｂ-01", /^:warning: `ｗｅｂ-01` cannot be used as a VM name: use 2 to 63 lowercase letters/],
      ["info ｗｅｂ-01", /^:warning: No VM named `ｗｅｂ-01`\./],
      ["info 💥", /^:warning: No VM named `💥`\./],
      ["create ok-name gigantic", /^:warning: There is no size `gigantic`\. Sizes: `small`/],
      ["resize twin cpu=0", /^:warning: `cpu=0`: the number of vCPUs must be a whole number of at least 1, for example `cpu=2`\. REQ\nUsage: `\/iaas resize &lt;vm&gt; \[cpu=N\] \[memory=GB\]`$/],
      ["resize twin memory=lots", /^:warning: `memory=lots`: memory is in GB/],
      ["resize twin disk=50", /^:warning: `disk=50` is not a resize option: use `cpu=N` and\/or `memory=GB`\./],
      ["resize twin", /^:warning: `resize twin` needs `cpu=N`, `memory=GB` or both\./],
      ["clone twin", /^:warning: `clone twin` needs a name for the new VM\./],
      [`info ${long}`, /^:warning: `a{59}…` is not a valid VM name \(is longer than 255 characters\)\. REQ/],
      [`create ${"b".repeat(100)}`, /^:warning: `b{59}…` cannot be used as a VM name \(is longer than 80 characters\)\. REQ/],
      [`create x ${"y".repeat(3000)}`, /^:warning: That command is 3009 characters long; a command may have at most 2000\. REQ$/],
      ["<!channel> hello", /^:warning: Unknown command `&lt;!channel&gt;`\. Run `\/iaas help` to see the commands\. REQ$/],
    ];
    it.each(cases)("/iaas %s", async (text, expected) => {
      const before = await fingerprint(sys);
      const r = await sys.slash(text);
      expect(r.status).toBe(200);
      expect(textOf(r.json)).toMatch(new RegExp(expected.source.replace("REQ", REQ.source)));
      expect(await fingerprint(sys)).toBe(before);
    });

    it("an ambiguous name on power is refused in the ack with the paths, changing nothing", async () => {
      const before = await fingerprint(sys);
      const r = await sys.slash("power on twin");
      expect(textOf(r.json)).toBe(`:warning: 2 VMs are named \`twin\`: \`/DC0/vm/twin\`, \`/DC0/vm/twin\`. Use the path. (request \`${idOf(r.json)}\`)`);
      expect(sys.slack.postsTo(r.responseUrl)).toEqual([]);
      expect(await fingerprint(sys)).toBe(before);
    });
  });

  it("a command the policy marks `confirm` (power reset) asks first, and runs when confirmed", async () => {
    const r = await sys.slash("power reset DC0_H0_VM0");
    expect(textOf(r.json)).toMatch(/^Run `\/iaas power reset DC0_H0_VM0`\? Confirm or cancel within 5 minutes\./);
    const id = idOf(r.json);
    expect(buttonsOf(r.json).map((b) => b.actionId)).toEqual(["iaas.confirm", "iaas.cancel"]);
    const c = await click(sys, { userId: "U0001", action: "confirm", value: id });
    expect(await finalPost(sys, c.responseUrl)).toContain("`DC0_H0_VM0` was reset");
  });
});
