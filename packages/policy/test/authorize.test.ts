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
    expect(policy.scopeOf(a, "delete")).toBe("own");
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
    for (const c of ["audit", "echo"] as const) expect(policy.can(builder, c)).toBe(false);
    expect(policy.scopeOf(builder, "delete")).toBe("own");
    expect(thrown(() => policy.authorize(builder, "audit"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`audit\`: it needs the auditor or admin role, and you have viewer, builder. Ask an IT admin."`);
    expect(thrown(() => policy.authorize(builder, "echo"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`echo\`: it needs the admin role, and you have viewer, builder. Ask an IT admin."`);
  });

  it("names the role that would allow it", () => {
    expect(thrown(() => policy.authorize(user("U0NOBODY"), "power.off"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`power off\`: it needs the operator or admin role, and you have viewer. Ask an IT admin."`);
  });

  it("says when no role grants a command at all", () => {
    const p = parsePolicy(POLICY.replace('admin: ["*"]', "admin: [help]"), { source: "t", env: {} });
    expect(thrown(() => p.authorize(user("U0NOBODY"), "echo"))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`echo\`: no role in the policy allows it, and you have viewer. Ask an IT admin."`);
  });
});

describe("scope: own and team VMs, or any VM", () => {
  const bob = user("U0BOB");
  const root = user("U0ROOT");
  const alicesVm = { name: "/DC0/vm/web-02", owner: "U0ALICE" };
  const teamVm = { name: "db-01", owner: "U0ALICE", team: "S0DEVS" };
  const unowned = { name: "DC0_H0_VM0" };

  it("a scoped grant reaches own VMs and team VMs; `*` reaches every VM", () => {
    expect(policy.mayActOn(bob, "delete", { name: "web-01", owner: "U0BOB" })).toBe(true);
    expect(policy.mayActOn(bob, "delete", alicesVm)).toBe(false);
    expect(policy.mayActOn(bob, "delete", teamVm)).toBe(false);
    expect(policy.mayActOn(user("U0DEV", { groups: ["S0DEVS"] }), "delete", teamVm)).toBe(true);
    expect(policy.mayActOn(bob, "delete", unowned)).toBe(false);
    expect(policy.mayActOn(root, "delete", alicesVm)).toBe(true);
    expect(policy.mayActOn(root, "delete", unowned)).toBe(true);
    // A command that names no VM is granted or not, whatever the VM.
    expect(policy.mayActOn(bob, "create", alicesVm)).toBe(true);
  });

  it("`owner` reaches only VMs the caller owns, not the team's", () => {
    const p = parsePolicy(POLICY.replace("builder: [create, clone, deploy, resize, delete]", "builder: [create, clone, deploy, resize, delete, owner]"), { source: "t", env: {} });
    const dev = user("U0DEV", { groups: ["S0DEVS"] });
    expect(p.mayActOn(dev, "delete", teamVm)).toBe(true);
    expect(p.mayActOn(dev, "owner", teamVm)).toBe(false);
    expect(p.mayActOn(user("U0ALICE", { groups: ["S0DEVS"] }), "owner", teamVm)).toBe(true);
    expect(thrown(() => p.authorizeOn(dev, "owner", teamVm))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: \`db-01\` belongs to <@U0ALICE> (<!subteam^S0DEVS>); you may not give it another owner: only its owner or an IT admin may give it away."`);
  });

  it("refusals say whose VM it is, or that it is admin-only until adopted", () => {
    expect(() => policy.authorizeOn(bob, "delete", { name: "web-01", owner: "U0BOB" })).not.toThrow();
    expect(() => policy.authorizeOn(root, "delete", unowned)).not.toThrow();
    expect(thrown(() => policy.authorizeOn(bob, "delete", alicesVm))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: \`web-02\` belongs to <@U0ALICE>; you may not delete it: ask them or an IT admin."`);
    expect(thrown(() => policy.authorizeOn(bob, "resize", teamVm))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: \`db-01\` belongs to <@U0ALICE> (<!subteam^S0DEVS>); you may not resize it: ask them or an IT admin."`);
    expect(thrown(() => policy.authorizeOn(bob, "info", { name: "db-02", team: "web" }))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: \`db-02\` belongs to team \`web\`; you may not see it: ask them or an IT admin."`);
    expect(thrown(() => policy.authorizeOn(bob, "delete", unowned))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: \`DC0_H0_VM0\` has no owner in IaaS, so only IT admins may delete it until it is adopted (an admin runs \`/iaas owner DC0_H0_VM0 @user\`)."`);
    expect(thrown(() => policy.authorizeOn(user("U0NOBODY"), "delete", { name: "web-01", owner: "U0NOBODY" }))).toMatchInlineSnapshot(`"IAAS_NOT_ALLOWED: You are not allowed to run \`delete\`: it needs the builder or admin role, and you have viewer. Ask an IT admin."`);
  });

  it("`:any` widens a scoped grant; a command that names no VM takes no `:any`", () => {
    const p = parsePolicy(POLICY.replace('operator: ["power.*"]', 'operator: ["power.*:any", "info:any", "delete.any"]'), { source: "t", env: {} });
    const op = user("U0ANN", { channelId: "C0OPS" });
    expect(p.scopeOf(op, "power.off")).toBe("any");
    expect(p.scopeOf(op, "info")).toBe("any");
    // Version 1's `delete.any` reads as `delete:any`.
    expect(p.scopeOf(op, "delete")).toBe("any");
    expect(p.mayActOn(op, "power.off", unowned)).toBe(true);
    const bad = (entry: string) => {
      try {
        parsePolicy(POLICY.replace('operator: ["power.*"]', `operator: ["${entry}"]`), { source: "t", env: {} });
      } catch (err) {
        return (err as Error).message;
      }
      return "loaded";
    };
    expect(bad("create:any")).toMatch(/"create" names no VM, so it takes no :any/);
    expect(bad("power.*:all")).toMatch(/unknown scope in "power\.\*:all"/);
    expect(bad("poweroff")).toMatch(/unknown command "poweroff"/);
  });

  it("teams: user groups by id, and the policy's teams by their users and groups", () => {
    const p = parsePolicy(`${POLICY}
teams:
  web: { users: [U0BOB] }
  data: { groups: [S0DATA] }
`, { source: "t", env: {} });
    expect(p.teamsOf(user("U0BOB"))).toEqual(["web"]);
    expect(p.teamsOf(user("U0EVE", { groups: ["S0DATA", "S0X"] }))).toEqual(["S0DATA", "S0X", "data"]);
    expect(p.isKnownTeam("web")).toBe(true);
    expect(p.isKnownTeam("S0ANY")).toBe(true);
    expect(p.isKnownTeam("nope")).toBe(false);
    expect(p.mayActOn(user("U0BOB"), "delete", { name: "db-02", team: "web" })).toBe(true);
    expect(p.namedGroups).toEqual(["S0DEVS", "S0AUDIT", "S0DATA"]);
  });

  it("help's grants carry the scope", () => {
    expect(policy.grantsOf(bob).filter((g) => ["list", "create", "delete"].includes(g.command))).toEqual([
      { command: "list", scope: "own" },
      { command: "create", scope: "any" },
      { command: "delete", scope: "own" },
    ]);
  });
});

describe("command ids", () => {
  it("NATS subjects map onto the same ids the gateway authorizes", () => {
    expect(commandIdOf("power", "off")).toBe("power.off");
    expect(commandIdOf("vm", "create")).toBe("create");
    expect(commandIdOf("vm", "delete")).toBe("delete");
    expect(() => commandIdOf("vm", "explode")).toThrow(TypeError);
    const all: CommandId[] = [...COMMAND_IDS];
    expect(commandIdOf("vm", "owner")).toBe("owner");
    expect(commandIdOf("snapshot", "revert")).toBe("snapshot.revert");
    expect(commandIdOf("lease", "extend")).toBe("lease.extend");
    expect(commandIdOf("lease", "set")).toBe("lease.set");
    expect(all).toHaveLength(29);
  });
});
