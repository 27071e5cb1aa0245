import { describe, expect, it } from "vitest";
import { IaasError, type Actor } from "@iaas/contracts";
import { COMMAND_IDS, loadPolicy, parsePolicy, PROTECTED_COMMANDS } from "@iaas/policy";

const POLICY = `
roles:
  builder: [create, resize, delete]
bindings:
  - role: builder
    everyone: true
sizes:
  tiny: { cpu: 1, memoryGB: 0.125, diskGB: 0.125 }
  small: { cpu: 1, memoryGB: 2, diskGB: 16 }
  large: { cpu: 8, memoryGB: 32, diskGB: 200 }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }
naming:
  pattern: "^[a-z][a-z0-9-]*$"
  description: "lowercase letters, digits and dashes, starting with a letter"
  maxLength: 20
protected:
  names: ["prod-*", "dc?-core", "*.critical"]
  folders: [/DC0/vm/Finance/]
quotas:
  vmsPerUser: 3
  users: { U0POWER: 50 }
confirm: ["power.*", delete]
confirmTtlSeconds: 120
rateLimit: { perUserPerMinute: 5 }
remediation:
  dryRun: true
  cpuAlarms: ["Custom CPU alarm"]
  withoutHotAdd: restart
  restartOptIn: { names: ["batch-*"] }
  excludedDatastores: ["scratch-*", LocalDS_0]
  datastoreThresholdPercent: 75
  maxActionsPerMinute: 3
`;

const policy = parsePolicy(POLICY, { source: "guards.yaml", env: {} });
/** The least a policy must say, for tests that add one section. */
const BASE = `
roles: { builder: [create] }
bindings: [{ role: builder, everyone: true }]
sizes: { small: { cpu: 1, memoryGB: 2, diskGB: 16 } }
defaultSize: small
limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 }`;
const alice: Actor = { userId: "U0ALICE", via: "slack" };

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IaasError);
    return `${(err as IaasError).code}: ${(err as Error).message}`;
  }
  throw new Error("expected an IaasError");
}

describe("protected VMs", () => {
  it("match name globs: * any run, ? one character, case-insensitive", () => {
    expect(policy.isProtected("prod-db")).toBe(true);
    expect(policy.isProtected("PROD-DB")).toBe(true);
    expect(policy.isProtected("prod-")).toBe(true);
    expect(policy.isProtected("preprod-db")).toBe(false);
    expect(policy.isProtected("dc1-core")).toBe(true);
    expect(policy.isProtected("dc12-core")).toBe(false);
    expect(policy.isProtected("ledger.critical")).toBe(true);
    expect(policy.isProtected("ledgerxcritical")).toBe(false); // `.` is literal
  });

  it("match the last segment of an inventory path by name", () => {
    expect(policy.isProtected("/DC0/vm/apps/prod-db")).toBe(true);
    expect(policy.isProtected("web-01", "/DC0/vm/apps/web-01")).toBe(false);
  });

  it("match folders by inventory path prefix, whole segments only", () => {
    expect(policy.isProtected("ledger", "/DC0/vm/Finance/ledger")).toBe(true);
    expect(policy.isProtected("ledger", "/DC0/vm/Finance/2026/ledger")).toBe(true);
    expect(policy.isProtected("/DC0/vm/finance/ledger")).toBe(true);
    expect(policy.isProtected("ledger", "/DC0/vm/FinanceOld/ledger")).toBe(false);
    expect(policy.isProtected("ledger")).toBe(false); // path unknown: the service re-checks once resolved
  });

  it("refuse delete, power off/reset/suspend/shutdown/reboot and resize; allow the rest", () => {
    const refused = COMMAND_IDS.filter((c) => {
      try {
        policy.checkProtected(c, { name: "prod-db" });
        return false;
      } catch {
        return true;
      }
    });
    expect(refused).toEqual([...PROTECTED_COMMANDS].sort((a, b) => COMMAND_IDS.indexOf(a) - COMMAND_IDS.indexOf(b)));
    expect(refused).toMatchInlineSnapshot(`
      [
        "power.off",
        "power.reset",
        "power.suspend",
        "power.shutdown",
        "power.reboot",
        "resize",
        "delete",
        "owner",
        "snapshot.revert",
        "snapshot.delete",
      ]
    `);
    expect(() => policy.checkProtected("power.off", { name: "web-01" })).not.toThrow();
  });

  it("say why, in words a user understands", () => {
    expect(thrown(() => policy.checkProtected("power.off", { name: "prod-db" }))).toMatchInlineSnapshot(`"IAAS_PROTECTED_VM: \`prod-db\` is protected by policy (its name matches \`prod-*\`): it cannot be powered off from Slack. Ask an IT admin."`);
    expect(thrown(() => policy.checkProtected("delete", { name: "ledger", path: "/DC0/vm/Finance/ledger" }))).toMatchInlineSnapshot(`"IAAS_PROTECTED_VM: \`ledger\` is protected by policy (it is in the protected folder \`/DC0/vm/Finance/\`): it cannot be deleted from Slack. Ask an IT admin."`);
    expect(thrown(() => policy.checkProtected("resize", { name: "/DC0/vm/dc2-core" }))).toMatchInlineSnapshot(`"IAAS_PROTECTED_VM: \`dc2-core\` is protected by policy (its name matches \`dc?-core\`): it cannot be resized from Slack. Ask an IT admin."`);
  });
});

describe("naming rule for new VMs", () => {
  it("accepts a good name", () => {
    expect(() => policy.checkName("web-01")).not.toThrow();
  });

  it("refuses with the rule's description", () => {
    expect(thrown(() => policy.checkName("Web_01"))).toMatchInlineSnapshot(`"IAAS_NAME_NOT_ALLOWED: \`Web_01\` cannot be used as a VM name: use lowercase letters, digits and dashes, starting with a letter."`);
    expect(thrown(() => policy.checkName("a-very-long-name-indeed"))).toMatchInlineSnapshot(`"IAAS_NAME_NOT_ALLOWED: \`a-very-long-name-indeed\` cannot be used as a VM name: it is longer than 20 characters."`);
  });

  it("never a path or a wildcard, whatever the pattern", () => {
    const loose = parsePolicy(POLICY.replace('pattern: "^[a-z][a-z0-9-]*$"', 'pattern: ".*"'), { source: "t", env: {} });
    expect(() => loose.checkName("anything goes")).not.toThrow();
    expect(thrown(() => loose.checkName("a/b"))).toMatch(/^IAAS_NAME_NOT_ALLOWED: /);
    expect(thrown(() => loose.checkName("web-*"))).toMatch(/^IAAS_NAME_NOT_ALLOWED: /);
  });

  it("refuses names reserved for protected VMs", () => {
    expect(thrown(() => policy.checkName("prod-web"))).toMatchInlineSnapshot(`"IAAS_NAME_NOT_ALLOWED: \`prod-web\` cannot be used as a VM name: names matching \`prod-*\` are reserved for protected VMs."`);
  });

  it("default rule: lowercase, digits, dashes, 2-63 characters", () => {
    const d = loadPolicy({ env: {} });
    expect(() => d.checkName("a1")).not.toThrow();
    expect(() => d.checkName(`a${"b".repeat(62)}`)).not.toThrow();
    expect(() => d.checkName(`a${"b".repeat(63)}`)).toThrow(IaasError);
    expect(() => d.checkName("a")).toThrow(IaasError);
    expect(() => d.checkName("1abc")).toThrow(IaasError);
    expect(thrown(() => d.checkName("My VM"))).toMatchInlineSnapshot(`"IAAS_NAME_NOT_ALLOWED: \`My VM\` cannot be used as a VM name: use 2 to 63 lowercase letters, digits and dashes, starting with a letter (for example web-01)."`);
  });
});

describe("sizes and resize limits", () => {
  it("resolves a size by name, case-insensitively, or the default", () => {
    expect(policy.resolveSize("LARGE")).toEqual({ name: "large", cpu: 8, memoryGB: 32, diskGB: 200 });
    expect(policy.resolveSize(undefined).name).toBe("small");
  });

  it("an unknown size lists the valid ones", () => {
    expect(thrown(() => policy.resolveSize("huge"))).toMatchInlineSnapshot(`"IAAS_UNKNOWN_SIZE: There is no size \`huge\`. Sizes: \`tiny\` (1 vCPU, 128 MB memory, 128 MB disk), \`small\` (1 vCPU, 2 GB memory, 16 GB disk), \`large\` (8 vCPU, 32 GB memory, 200 GB disk)."`);
    expect(thrown(() => policy.resolveSize("constructor"))).toMatch(/^IAAS_UNKNOWN_SIZE: /);
  });

  it("resize within limits returns the target; what is left out stays", () => {
    expect(policy.checkResize({ cpu: 2, memoryGB: 4 }, { cpu: 8 })).toEqual({ cpu: 8, memoryGB: 4 });
    expect(policy.checkResize({ cpu: 2, memoryGB: 4 }, { memoryGB: 0.5 })).toEqual({ cpu: 2, memoryGB: 0.5 });
    expect(policy.checkResize({ cpu: 2, memoryGB: 4 }, { cpu: 1, memoryGB: 32 })).toEqual({ cpu: 1, memoryGB: 32 });
  });

  it("resize above limits or to nonsense is refused", () => {
    expect(thrown(() => policy.checkResize({ cpu: 2, memoryGB: 4 }, { cpu: 9 }))).toMatchInlineSnapshot(`"IAAS_LIMIT_EXCEEDED: \`cpu=9\` is more than the policy allows: at most 8 vCPU."`);
    expect(thrown(() => policy.checkResize({ cpu: 2, memoryGB: 4 }, { memoryGB: 33 }))).toMatchInlineSnapshot(`"IAAS_LIMIT_EXCEEDED: \`memory=33\` is more than the policy allows: at most 32 GB."`);
    expect(thrown(() => policy.checkResize({ cpu: 2, memoryGB: 4 }, { cpu: 0 }))).toMatchInlineSnapshot(`"IAAS_SYNTAX: \`cpu=0\` is not a valid number of vCPUs: use a whole number from 1 to 8."`);
    expect(thrown(() => policy.checkResize({ cpu: 2, memoryGB: 4 }, { memoryGB: 0.1 }))).toMatchInlineSnapshot(`"IAAS_SYNTAX: \`memory=0.1\` is not a valid memory size: use GB, for example \`memory=8\` or \`memory=0.5\`."`);
    expect(thrown(() => policy.checkResize({ cpu: 2, memoryGB: 4 }, {}))).toMatchInlineSnapshot(`"IAAS_SYNTAX: Say what to change: \`cpu=N\`, \`memory=GB\` or both."`);
  });
});

describe("protection fails closed and says where the command came from", () => {
  it("a looked-up VM without a path cannot be cleared of folder protection", () => {
    expect(thrown(() => policy.checkProtected("power.off", { name: "ledger" }, { resolved: true }))).toMatchInlineSnapshot(`"IAAS_VCENTER_UNAVAILABLE: Cannot tell whether \`ledger\` is in a protected folder (its inventory path could not be read), so it was not powered off. Try again in a minute."`);
    // Its path read: decided.
    expect(() => policy.checkProtected("power.off", { name: "ledger", path: "/DC0/vm/web/ledger" }, { resolved: true })).not.toThrow();
    expect(() => policy.checkProtected("power.off", { name: "ledger", path: "/DC0/vm/Finance/ledger" }, { resolved: true })).toThrow(IaasError);
    // Not looked up yet (the gateway's first check from the name alone): the service decides later.
    expect(() => policy.checkProtected("power.off", { name: "ledger" })).not.toThrow();
    // A command that protection does not cover needs no path.
    expect(() => policy.checkProtected("power.on", { name: "ledger" }, { resolved: true })).not.toThrow();
  });

  it("names the path the command came on", () => {
    expect(thrown(() => policy.checkProtected("delete", { name: "prod-db" }, { via: "nats" }))).toMatchInlineSnapshot(`"IAAS_PROTECTED_VM: \`prod-db\` is protected by policy (its name matches \`prod-*\`): it cannot be deleted over NATS. Ask an IT admin."`);
    expect(thrown(() => policy.checkProtected("delete", { name: "prod-db" }, { via: "slack" }))).toMatch(/from Slack/);
  });
});

describe("quotas", () => {
  const use = (vms: number, cpu = 0, memoryGB = 0, diskGB = 0) => ({ vms, cpu, memoryGB, diskGB });
  const oneSmall = use(1, 1, 2, 16);

  it("a version-1 quota section keeps its meaning: vmsPerUser is the VM count, and no other limit", () => {
    expect(policy.quotaOf("user", alice.userId)).toEqual({ vms: 3 });
    expect(() => policy.checkQuota({ actor: alice, request: oneSmall, user: use(2, 500, 9000, 1e6) })).not.toThrow();
    expect(thrown(() => policy.checkQuota({ actor: alice, request: oneSmall, user: use(3) }))).toMatchInlineSnapshot(`"IAAS_QUOTA_EXCEEDED: Over your quota: you use 3 of 3 VMs; this needs 1 more VM. Delete a VM you no longer need, or ask an IT admin to raise your quota (\`/iaas quota\` shows it)."`);
  });

  it("per-user overrides (version 1: a number is a VM count)", () => {
    expect(policy.quotaOf("user", "U0POWER")).toEqual({ vms: 50 });
    const power: Actor = { userId: "U0POWER", via: "slack" };
    expect(() => policy.checkQuota({ actor: power, request: oneSmall, user: use(49) })).not.toThrow();
    expect(() => policy.checkQuota({ actor: power, request: oneSmall, user: use(50) })).toThrow(IaasError);
  });

  it("counts every resource, per user and per team, and gives the figures", () => {
    const p = parsePolicy(`${BASE}
quotas:
  perUser: { vms: 10, cpu: 16, memoryGB: 64 }
  perTeam: { vms: 20, cpu: 40 }
  users: { U0BIG: { cpu: 64 } }
  teams: { S0PLAT: { vms: 2 }, web: { cpu: 4 } }
teams:
  web: { users: [U0ALICE] }
`, { source: "q.yaml", env: {} });
    expect(p.quotaOf("user", "U0BIG")).toEqual({ vms: 10, cpu: 64, memoryGB: 64 });
    expect(p.quotaOf("team", "S0PLAT")).toEqual({ vms: 2, cpu: 40 });
    expect(p.quotaOf("team", "S0OTHER")).toEqual({ vms: 20, cpu: 40 });
    // Exactly at the limit is allowed.
    expect(() => p.checkQuota({ actor: alice, request: use(1, 2, 4, 40), user: use(9, 14, 60, 5000) })).not.toThrow();
    expect(thrown(() => p.checkQuota({ actor: alice, request: use(1, 2, 4, 40), user: use(9, 15, 61, 0) }))).toMatchInlineSnapshot(`"IAAS_QUOTA_EXCEEDED: Over your quota: you use 15 of 16 vCPU and 61 of 64 GB memory; this needs 2 more vCPU and 4 more GB memory. Delete a VM you no longer need, or ask an IT admin to raise your quota (\`/iaas quota\` shows it)."`);
    expect(thrown(() => p.checkQuota({ actor: alice, request: use(1, 1, 2, 16), user: use(0), team: { id: "S0PLAT", used: use(2, 2) } }))).toMatchInlineSnapshot(`"IAAS_QUOTA_EXCEEDED: Over the quota of <!subteam^S0PLAT>: it uses 2 of 2 VMs; this needs 1 more VM. Ask an IT admin to raise the team's quota (\`/iaas quota\` shows it)."`);
    expect(thrown(() => p.checkQuota({ actor: alice, request: use(1, 2, 2, 16), user: use(0), team: { id: "web", used: use(0, 3) } }))).toMatchInlineSnapshot(`"IAAS_QUOTA_EXCEEDED: Over the quota of team \`web\`: it uses 3 of 4 vCPU; this needs 2 more vCPU. Ask an IT admin to raise the team's quota (\`/iaas quota\` shows it)."`);
  });

  it("refuses negative or absurd quota values, naming the field", () => {
    const bad = (q: string) => {
      try {
        parsePolicy(`${BASE}\nquotas:\n${q}\n`, { source: "q.yaml", env: {} });
      } catch (err) {
        return (err as Error).message;
      }
      return "loaded";
    };
    expect(bad("  perUser: { vms: -1 }")).toMatch(/quotas\.perUser\.vms/);
    expect(bad("  perTeam: { memoryGB: 1e12 }")).toMatch(/quotas\.perTeam\.memoryGB/);
    expect(bad("  users: { U0A: { cpu: 1.5 } }")).toMatch(/quotas\.users\.U0A\.cpu/);
    expect(bad("  teams: { \"Platform Team\": { vms: 1 } }")).toMatch(/quotas\.teams/);
    expect(bad("  perUser: { vm: 3 }")).toMatch(/quotas\.perUser/);
  });
});

describe("confirmation and rate", () => {
  it("follows confirm, with power.* expanded", () => {
    expect(COMMAND_IDS.filter((c) => policy.needsConfirmation(c))).toEqual([
      "power.on",
      "power.off",
      "power.reset",
      "power.suspend",
      "power.shutdown",
      "power.reboot",
      "delete",
    ]);
    expect(policy.confirmTtlSeconds).toBe(120);
    expect(policy.rateLimitPerUserPerMinute).toBe(5);
  });
});

describe("remediation settings", () => {
  it("reads what the file sets and defaults the rest", () => {
    expect(policy.remediation).toEqual({
      enabled: true,
      dryRun: true,
      cpuAlarms: ["Custom CPU alarm"],
      memoryAlarms: ["VM Memory Usage", "Virtual machine memory usage"],
      datastoreAlarms: ["Datastore usage on disk"],
      vmStorageAlarms: ["VM Storage Usage"],
      maxCpu: 4,
      maxMemoryGB: 16,
      cooldownMinutes: 10,
      withoutHotAdd: "restart",
      restartOptIn: { names: ["batch-*"] },
      excludedDatastores: ["scratch-*", "LocalDS_0"],
      datastoreThresholdPercent: 75,
      maxActionsPerMinute: 3,
      flap: { count: 5, withinMinutes: 30 },
    });
  });

  it("matches alarm names exactly, ignoring case and outer spaces; configured names replace the defaults", () => {
    expect(policy.isAlarm("cpu", " custom cpu ALARM ")).toBe(true);
    expect(policy.isAlarm("cpu", "VM CPU Usage")).toBe(false);
    expect(policy.isAlarm("cpu", "Custom CPU alarm 2")).toBe(false);
    expect(policy.isAlarm("memory", "Custom CPU alarm")).toBe(false);
  });

  it("restart opt-in by VM name glob (case-sensitive: it widens what remediation may do)", () => {
    expect(policy.mayRestart("batch-7")).toBe(true);
    expect(policy.mayRestart("/DC0/vm/jobs/batch-7")).toBe(true);
    expect(policy.mayRestart("Batch-7")).toBe(false);
    expect(policy.mayRestart("web-01")).toBe(false);
  });

  it("excluded datastores by glob", () => {
    expect(policy.isDatastoreExcluded("scratch-01")).toBe(true);
    expect(policy.isDatastoreExcluded("localds_0")).toBe(true);
    expect(policy.isDatastoreExcluded("LocalDS_1")).toBe(false);
  });
});
