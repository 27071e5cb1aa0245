import { describe, expect, it } from "vitest";
import { IaasError, type Actor } from "@iaas/contracts";
import { commandIdOf, COMMAND_IDS, parsePolicy, type CommandId, type Policy } from "@iaas/policy";

const POLICY = `
roles:
  viewer: [help, list, info, templates, sizes]
  operator: ["power.*"]
  builder: [create, clone, deploy, resize, delete]
  auditor: [audit]
  admin: ["*"]
bindings:
  - role: viewer
    everyone: true
  - role: operator
    channels: [C0OPS]
  - role: builder
    groups: [S0DEVS]
  - role: builder
    users: [U0BOB]
  - role: auditor
    users: [U0CAROL]
    groups: [S0AUDIT]
sizes:
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
`;

const policy: Policy = parsePolicy(POLICY, { source: "test.yaml", env: { IAAS_ADMINS: "U0ROOT" } });
const user = (userId: string, extra: Partial<Actor> = {}): Actor => ({ userId, via: "slack", ...extra });

/** The IaasError a call throws, as `CODE: message`. */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IaasError);
    return `${(err as IaasError).code}: ${(err as Error).message}`;
  }
  throw new Error("expected an IaasError");
}

describe("bindings", () => {
  it("`everyone: true` binds every user, from Slack or NATS", () => {
    expect(policy.rolesOf(user("U0NOBODY"))).toEqual(["viewer"]);
    expect(policy.rolesOf(user("W0ENTERPRISE", { via: "nats" }))).toEqual(["viewer"]);
  });

  it("by user", () => {
    expect(policy.rolesOf(user("U0BOB"))).toEqual(["viewer", "builder"]);
    expect(policy.can(user("U0BOB"), "create")).toBe(true);
    expect(policy.can(user("U0BOBBY"), "create")).toBe(false);
  });

  it("by channel: the channel the command is run in", () => {
    expect(policy.can(user("U0ANN", { channelId: "C0OPS" }), "power.off")).toBe(true);
    expect(policy.can(user("U0ANN", { channelId: "C0RANDOM" }), "power.off")).toBe(false);
    expect(policy.can(user("U0ANN"), "power.off")).toBe(false);
  });

  it("by user group", () => {
    expect(policy.rolesOf(user("U0DAN", { groups: ["S0OTHER", "S0DEVS"] }))).toEqual(["viewer", "builder"]);
    expect(policy.rolesOf(user("U0DAN", { groups: ["S0OTHER"] }))).toEqual(["viewer"]);
    expect(policy.rolesOf(user("U0DAN", { groups: [] }))).toEqual(["viewer"]);
  });

  it("boundGroups / usesGroups: the group ids the bindings name (what the gateway looks up)", () => {
    expect(policy.boundGroups).toEqual(["S0DEVS", "S0AUDIT"]);
    expect(policy.usesGroups).toBe(true);
    const noGroups = parsePolicy(POLICY.replace(/^ {4}groups: .*\n/gm, "").replace(/^  - role: builder\n(?=  - role: builder)/m, ""), { source: "test.yaml", env: {} });
    expect(noGroups.boundGroups).toEqual([]);
    expect(noGroups.usesGroups).toBe(false);
  });

  it("one binding with users and groups matches either", () => {
    expect(policy.can(user("U0CAROL"), "audit")).toBe(true);
    expect(policy.can(user("U0EVE", { groups: ["S0AUDIT"] }), "audit")).toBe(true);
  });

  it("roles add up across bindings", () => {
    const a = user("U0BOB", { channelId: "C0OPS", groups: ["S0AUDIT"] });
    expect(policy.rolesOf(a)).toEqual(["viewer", "operator", "builder", "auditor"]);
    expect(policy.can(a, "delete.any")).toBe(false);
  });

  it("IAAS_ADMINS adds the admin role; `*` grants every command", () => {
    expect(policy.rolesOf(user("U0ROOT"))).toEqual(["viewer", "admin"]);
    expect(policy.allowedCommands(user("U0ROOT"))).toEqual([...COMMAND_IDS]);
  });

  it("`power.*` grants every power action and nothing else", () => {
    const op = user("U0ANN", { channelId: "C0OPS" });
    expect(policy.allowedCommands(op).filter((c) => !policy.can(user("U0NOBODY"), c))).toEqual([
      "power.on",
      "power.off",
      "power.reset",
      "power.suspend",
      "power.shutdown",
      "power.reboot",
    ]);
  });

  it("a user bound to nothing may run nothing, not even help", () => {
    const p = parsePolicy(POLICY.replace("everyone: true", "users: [U0VIEWER]"), { source: "t", env: {} });
    expect(p.rolesOf(user("U0NOBODY"))).toEqual([]);
    expect(p.allowedCommands(user("U0NOBODY"))).toEqual([]);
    expect(thrown(() => p.authorize(user("U0NOBODY"), "help"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You have no role in the IaaS policy, so you cannot run \`help\`. Ask an IT admin to add you."`);
  });
});

describe("authorize", () => {
  const builder = user("U0BOB");

  it("passes for a granted command", () => {
    expect(() => policy.authorize(builder, "create")).not.toThrow();
    expect(() => policy.authorize(user("U0ROOT"), "audit")).not.toThrow();
  });

  it("a non-admin cannot audit, echo or delete any VM", () => {
    for (const c of ["audit", "echo", "delete.any"] as const) expect(policy.can(builder, c)).toBe(false);
    expect(thrown(() => policy.authorize(builder, "audit"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`audit\`: it needs the auditor or admin role, and you have viewer, builder. Ask an IT admin."`);
    expect(thrown(() => policy.authorize(builder, "echo"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`echo\`: it needs the admin role, and you have viewer, builder. Ask an IT admin."`);
    expect(thrown(() => policy.authorize(builder, "delete.any"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`delete (any VM)\`: it needs the admin role, and you have viewer, builder. Ask an IT admin."`);
  });

  it("names the role that would allow it", () => {
    expect(thrown(() => policy.authorize(user("U0NOBODY"), "power.off"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`power off\`: it needs the operator or admin role, and you have viewer. Ask an IT admin."`);
  });

  it("says when no role grants a command at all", () => {
    const p = parsePolicy(POLICY.replace('admin: ["*"]', "admin: [help]"), { source: "t", env: {} });
    expect(thrown(() => p.authorize(user("U0NOBODY"), "echo"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`echo\`: no role in the policy allows it, and you have viewer. Ask an IT admin."`);
  });
});

describe("delete: builders their own VMs, admins any", () => {
  const bob = user("U0BOB");
  const root = user("U0ROOT");

  it("canDelete", () => {
    expect(policy.canDelete(bob, "U0BOB")).toBe(true);
    expect(policy.canDelete(bob, "U0ALICE")).toBe(false);
    expect(policy.canDelete(bob, undefined)).toBe(false);
    expect(policy.canDelete(root, "U0ALICE")).toBe(true);
    expect(policy.canDelete(root, undefined)).toBe(true);
    expect(policy.canDelete(user("U0NOBODY"), "U0NOBODY")).toBe(false);
  });

  it("authorizeDelete explains whose VM it is", () => {
    expect(() => policy.authorizeDelete(bob, { name: "web-01", owner: "U0BOB" })).not.toThrow();
    expect(() => policy.authorizeDelete(root, { name: "web-01" })).not.toThrow();
    expect(thrown(() => policy.authorizeDelete(bob, { name: "/DC0/vm/web-02", owner: "U0ALICE" }))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You can only delete VMs you own, and \`web-02\` belongs to <@U0ALICE>. Ask them or an IT admin."`);
    expect(thrown(() => policy.authorizeDelete(bob, { name: "DC0_H0_VM0" }))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You can only delete VMs you own, and \`DC0_H0_VM0\` has no recorded owner (it was not made through IaaS). Ask an IT admin."`);
    expect(thrown(() => policy.authorizeDelete(user("U0NOBODY"), { name: "web-01", owner: "U0NOBODY" }))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`delete\`: it needs the builder or admin role, and you have viewer. Ask an IT admin."`);
  });
});

describe("command ids", () => {
  it("NATS subjects map onto the same ids the gateway authorizes", () => {
    expect(commandIdOf("power", "off")).toBe("power.off");
    expect(commandIdOf("vm", "create")).toBe("create");
    expect(commandIdOf("vm", "delete")).toBe("delete");
    expect(() => commandIdOf("vm", "explode")).toThrow(TypeError);
    const all: CommandId[] = [...COMMAND_IDS];
    expect(all).toHaveLength(19);
  });
});
