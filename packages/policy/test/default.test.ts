import { parseDuration } from "@iaas/contracts";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Actor } from "@iaas/contracts";
import { COMMAND_IDS, DEFAULT_POLICY, DEFAULT_POLICY_SOURCE, loadPolicy, PolicyDocumentSchema } from "@iaas/policy";

const examplePath = fileURLToPath(new URL("../../../deploy/policy.example.yaml", import.meta.url));
const anyone: Actor = { userId: "U0ANYONE", via: "slack" };
const admin: Actor = { userId: "U0ADMIN", via: "slack" };

describe("default policy", () => {
  const policy = loadPolicy({ env: { IAAS_ADMINS: "U0ADMIN, U0OTHER" } });

  it("is used when IAAS_POLICY is unset or empty", () => {
    expect(policy.source).toBe(DEFAULT_POLICY_SOURCE);
    expect(loadPolicy({ env: { IAAS_POLICY: "  " } }).source).toBe(DEFAULT_POLICY_SOURCE);
  });

  it("deploy/policy.example.yaml is exactly the built-in default", () => {
    expect(parse(readFileSync(examplePath, "utf8"))).toEqual(DEFAULT_POLICY);
    const fromFile = loadPolicy({ path: examplePath, env: { IAAS_ADMINS: "U0ADMIN, U0OTHER" } });
    expect(fromFile.document).toEqual(policy.document);
    expect(fromFile.source).toBe(examplePath);
  });

  it("leaves nothing to field defaults: the embedded default is complete", () => {
    // Parsing fills defaults; if it added anything, DEFAULT_POLICY (and the example) would be
    // missing a field that docs/policy.md documents.
    // Durations are written `30d` and parsed to ms.
    const ms = (d: string) => parseDuration(d) as number;
    const { leases, snapshots } = DEFAULT_POLICY;
    expect(PolicyDocumentSchema.parse(DEFAULT_POLICY)).toEqual({
      ...DEFAULT_POLICY,
      leases: { ...leases, default: ms(leases.default), max: ms(leases.max), grace: ms(leases.grace), remindBefore: leases.remindBefore.map(ms) },
      snapshots: { ...snapshots, maxAge: ms(snapshots.maxAge) },
    });
  });

  it("makes every Slack user viewer, operator and builder", () => {
    expect(policy.rolesOf(anyone)).toEqual(["viewer", "operator", "builder"]);
    expect(policy.allowedCommands(anyone)).toMatchInlineSnapshot(`
      [
        "help",
        "list",
        "info",
        "templates",
        "sizes",
        "quota",
        "create",
        "clone",
        "deploy",
        "power.on",
        "power.off",
        "power.reset",
        "power.suspend",
        "power.shutdown",
        "power.reboot",
        "resize",
        "delete",
        "owner",
        "snapshot.list",
        "snapshot.create",
        "snapshot.revert",
        "snapshot.delete",
        "lease",
        "lease.extend",
        "approvals",
      ]
    `);
    for (const c of ["echo", "audit"] as const) expect(policy.can(anyone, c)).toBe(false);
  });

  it("scopes viewer, operator and builder to own and team VMs; admins act on any", () => {
    const scoped = policy.grantsOf(anyone).filter((g) => g.scope === "own").map((g) => g.command);
    expect(scoped).toEqual(["list", "info", "clone", "power.on", "power.off", "power.reset", "power.suspend", "power.shutdown", "power.reboot", "resize", "delete", "owner", "snapshot.list", "snapshot.create", "snapshot.revert", "snapshot.delete", "lease", "lease.extend"]);
    expect(policy.can(anyone, "lease.set")).toBe(false);
    expect(policy.grantsOf(admin).every((g) => g.scope === "any")).toBe(true);
    expect(policy.mayActOn(anyone, "power.off", { name: "DC0_H0_VM0" })).toBe(false);
    expect(policy.mayActOn(admin, "power.off", { name: "DC0_H0_VM0" })).toBe(true);
  });

  it("makes the users in IAAS_ADMINS admin, with every command", () => {
    expect(policy.rolesOf(admin)).toEqual(["viewer", "operator", "builder", "admin"]);
    expect(policy.rolesOf({ userId: "U0OTHER", via: "nats" })).toContain("admin");
    expect(policy.allowedCommands(admin)).toEqual([...COMMAND_IDS]);
    expect(loadPolicy({ env: {} }).rolesOf(admin)).not.toContain("admin");
  });

  it("protects prod-* and nothing else", () => {
    expect(policy.isProtected("prod-db")).toBe(true);
    expect(policy.isProtected("web-01")).toBe(false);
    expect(policy.isProtected("my-prod-db")).toBe(false);
  });

  it("has four sizes, small by default, xlarge only with an approval, and limits of 8 vCPU and 32 GB", () => {
    expect(policy.sizes()).toEqual([
      { name: "small", cpu: 1, memoryGB: 2, diskGB: 16 },
      { name: "medium", cpu: 2, memoryGB: 4, diskGB: 40 },
      { name: "large", cpu: 4, memoryGB: 8, diskGB: 80 },
      { name: "xlarge", cpu: 8, memoryGB: 32, diskGB: 200, approval: true },
    ]);
    const xlarge = policy.resolveSize("xlarge");
    expect(policy.approvalFor({ command: "create", vm: "big-01", size: xlarge })).toMatchObject({ rule: { name: "big-sizes", approvers: { roles: ["admin"] } }, why: "size `xlarge` needs an approval" });
    expect(policy.approvalFor({ command: "create", vm: "web-01", size: policy.resolveSize("large") })).toBeUndefined();
    expect(policy.approvalFor({ command: "lease.extend", vm: "web-01", leaseMs: 91 * 86_400_000 })?.rule.name).toBe("long-leases");
    expect(policy.approvalFor({ command: "lease.extend", vm: "web-01", leaseMs: 90 * 86_400_000 })).toBeUndefined();
    expect(policy.isApprover(admin, policy.approvalRules[0]!)).toBe(true);
    expect(policy.isApprover(anyone, policy.approvalRules[0]!)).toBe(false);
    expect(policy.resolveSize()).toEqual({ name: "small", cpu: 1, memoryGB: 2, diskGB: 16 });
    expect(policy.limits).toMatchObject({ maxCpu: 8, maxMemoryGB: 32 });
  });

  it("asks for confirmation before delete and snapshot revert only", () => {
    expect(COMMAND_IDS.filter((c) => policy.needsConfirmation(c))).toEqual(["delete", "snapshot.revert"]);
    expect(policy.confirmTtlSeconds).toBe(300);
  });

  it("turns remediation on with caps of 4 vCPU and 16 GB and a 10-minute cooldown", () => {
    expect(policy.remediation).toMatchObject({ enabled: true, dryRun: false, maxCpu: 4, maxMemoryGB: 16, cooldownMinutes: 10, withoutHotAdd: "defer" });
    expect(policy.isAlarm("cpu", "VM CPU Usage")).toBe(true);
    expect(policy.isAlarm("cpu", "Virtual machine CPU usage")).toBe(true);
    expect(policy.isAlarm("memory", "Virtual machine memory usage")).toBe(true);
    expect(policy.alarmKind("Datastore usage on disk")).toBe("datastore");
    expect(policy.alarmKind("VM Storage Usage")).toBe("vmStorage");
    expect(policy.alarmKind("Host CPU usage")).toBeUndefined();
  });

  it("places new VMs in the simulator's DC0", () => {
    expect(policy.placement).toEqual({ datacenter: "DC0", resourcePool: "/DC0/host/DC0_C0/Resources", folder: "/DC0/vm" });
  });
});
