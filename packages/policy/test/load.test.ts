import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadPolicy, PolicyError } from "@iaas/policy";

const dir = mkdtempSync(join(tmpdir(), "iaas-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes `text` to a fresh temp file and returns its path. */
function file(text: string): string {
  const path = join(dir, `policy-${++n}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** The smallest valid policy; each failure case below changes one thing in it. */
const MINIMAL = `
roles:
  viewer: [help, list, info]
  builder: [create, delete]
bindings:
  - role: viewer
    everyone: true
  - role: builder
    users: [U0BOB]
sizes:
  small: { cpu: 1, memoryGB: 0.125, diskGB: 0.125 }
  big: { cpu: 4, memoryGB: 16, diskGB: 100 }
defaultSize: small
limits: { maxCpu: 4, maxMemoryGB: 16, maxDiskGB: 100 }
`;

/** The one-line PolicyError message, with the temp dir replaced so snapshots are stable. */
function failure(text: string, env: Record<string, string> = {}): string {
  const path = file(text);
  try {
    loadPolicy({ path, env });
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as Error).message).not.toMatch(/\n/);
    return (err as Error).message.replace(path, "<file>");
  }
  throw new Error("the policy loaded, but it should not have");
}

describe("loadPolicy: good files", () => {
  it("loads a minimal policy and fills every other field from the default", () => {
    const p = loadPolicy({ path: file(MINIMAL), env: {} });
    expect(p.resolveSize("big")).toEqual({ name: "big", cpu: 4, memoryGB: 16, diskGB: 100 });
    expect(p.isProtected("prod-x")).toBe(true);
    expect(p.document.naming.maxLength).toBe(63);
    expect(p.document.quotas).toEqual({
      perUser: { vms: 10, cpu: 20, memoryGB: 64, diskGB: 1000 },
      perTeam: { vms: 50, cpu: 100, memoryGB: 320, diskGB: 5000 },
      users: {},
      teams: {},
    });
    expect(p.document.teams).toEqual({});
    expect(p.remediation.cooldownMinutes).toBe(10);
    expect(p.needsConfirmation("delete")).toBe(true);
    expect(p.placement.datacenter).toBe("DC0");
  });

  it("reads the file named by IAAS_POLICY", () => {
    const path = file(MINIMAL);
    expect(loadPolicy({ env: { IAAS_POLICY: path } }).source).toBe(path);
  });

  it("takes a field written inside a section and keeps the default for the rest", () => {
    const p = loadPolicy({ path: file(`${MINIMAL}remediation: { dryRun: true }\nprotected: { folders: [/DC0/vm/prod] }\n`), env: {} });
    expect(p.remediation).toMatchObject({ dryRun: true, enabled: true, maxCpu: 4 });
    expect(p.document.protected).toEqual({ names: ["prod-*"], folders: ["/DC0/vm/prod"] });
  });

  it("replaces placement as a whole when it is written", () => {
    const p = loadPolicy({ path: file(`${MINIMAL}placement: { datacenter: Paris, cluster: Prod }\n`), env: {} });
    expect(p.placement).toEqual({ datacenter: "Paris", cluster: "Prod" });
  });

  it("a vCenter's own placement is taken whole; its limits field by field over the top-level ones", () => {
    const p = loadPolicy({ path: file(`${MINIMAL}placement: { datacenter: Paris, cluster: Prod }
vcenters:
  dr-site:
    placement: { datacenter: Lyon, folder: /Lyon/vm }
    limits: { maxCpu: 2 }
  lab: { limits: { maxMemoryGB: 8 } }
`), env: {} });
    expect(p.placementFor("dr-site")).toEqual({ datacenter: "Lyon", folder: "/Lyon/vm" });
    expect(p.placementFor("lab")).toEqual({ datacenter: "Paris", cluster: "Prod" });
    expect(p.placementFor("other")).toEqual({ datacenter: "Paris", cluster: "Prod" });
    expect(p.placementFor(undefined)).toEqual({ datacenter: "Paris", cluster: "Prod" });
    expect(p.limitsFor("dr-site")).toEqual({ maxCpu: 2, maxMemoryGB: 16, maxDiskGB: 100 });
    expect(p.limitsFor("lab")).toEqual({ maxCpu: 4, maxMemoryGB: 8, maxDiskGB: 100 });
    expect(p.limitsFor(undefined)).toEqual({ maxCpu: 4, maxMemoryGB: 16, maxDiskGB: 100 });
    // A size that fits the top-level limits may not fit a vCenter's; resize is checked there too.
    const big = p.resolveSize("big");
    expect(() => p.checkSizeIn(big, undefined)).not.toThrow();
    expect(() => p.checkSizeIn(big, "other")).not.toThrow();
    expect(() => p.checkSizeIn(big, "dr-site")).toThrow("Size `big` is more than the policy allows in vCenter `dr-site`: 4 vCPU (at most 2).");
    expect(() => p.checkSizeIn(big, "lab")).toThrow("16 GB memory (at most 8 GB)");
    expect(() => p.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: 3 }, "dr-site")).toThrow("`cpu=3` is more than the policy allows in vCenter `dr-site`: at most 2 vCPU.");
    expect(p.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: 3 }, "lab")).toEqual({ cpu: 3, memoryGB: 1 });
  });
});

describe("loadPolicy: bad files name the field", () => {
  it("a missing file", () => {
    expect(() => loadPolicy({ path: join(dir, "nope.yaml"), env: {} })).toThrowError(/nope\.yaml: cannot read the file \(no such file\)/);
  });

  it("a YAML syntax error gives line and column", () => {
    expect(failure(`roles:\n  viewer: [help, list\nbindings: []\n`)).toMatchInlineSnapshot(`"policy <file>: YAML syntax error at line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]"`);
  });

  it("a duplicate key is a YAML error, not a silent override", () => {
    expect(failure(`${MINIMAL}defaultSize: big\n`)).toMatchInlineSnapshot(`"policy <file>: YAML syntax error at line 15, column 1: Map keys must be unique"`);
  });

  it("an empty file", () => {
    expect(failure("# nothing here\n")).toMatchInlineSnapshot(`"policy <file>: the file is empty; see deploy/policy.example.yaml"`);
  });

  it("not a mapping", () => {
    expect(failure("- roles\n- bindings\n")).toMatchInlineSnapshot(`"policy <file>: the policy must be a mapping of sections (got a list)"`);
  });

  it("an unknown key, at the top and inside a section, lists what is allowed", () => {
    expect(failure(`${MINIMAL}quota: { vmsPerUser: 3 }\n`)).toMatchInlineSnapshot(`"policy <file>: quota: unknown field (allowed here: roles, bindings, sizes, defaultSize, limits, naming, placement, vcenters, protected, teams, quotas, confirm, confirmTtlSeconds, rateLimit, remediation, approvals, leases, snapshots)"`);
    expect(failure(MINIMAL.replace("maxDiskGB: 100", "maxDiskGB: 100, maxGpu: 1"))).toMatchInlineSnapshot(`"policy <file>: limits.maxGpu: unknown field (allowed here: maxCpu, maxMemoryGB, maxDiskGB)"`);
  });

  it("a wrong type", () => {
    expect(failure(MINIMAL.replace("maxCpu: 4", 'maxCpu: "four"'))).toMatchInlineSnapshot(`"policy <file>: limits.maxCpu: must be a number (got "four")"`);
    expect(failure(MINIMAL.replace("bindings:", "bindings: {}\nx_bindings:"))).toMatchInlineSnapshot(`"policy <file>: bindings: must be a list (got a mapping); x_bindings: unknown field (allowed here: roles, bindings, sizes, defaultSize, limits, naming, placement, vcenters, protected, teams, quotas, confirm, confirmTtlSeconds, rateLimit, remediation, approvals, leases, snapshots)"`);
  });

  it("a missing required field", () => {
    expect(failure(MINIMAL.replace("defaultSize: small\n", ""))).toMatchInlineSnapshot(`"policy <file>: defaultSize: is required"`);
  });

  it("a non-positive or fractional cap", () => {
    expect(failure(`${MINIMAL}quotas: { perUser: { vms: -1 } }\nremediation: { maxCpu: 1.5, cooldownMinutes: -1 }\n`)).toMatchInlineSnapshot(`"policy <file>: quotas.perUser.vms: must be ≥ 0 (got -1); remediation.maxCpu: must be a whole number (got 1.5); remediation.cooldownMinutes: must be ≥ 1 (got -1)"`);
    // Version 1's key reads as perUser.vms, and is checked as that.
    expect(failure(`${MINIMAL}quotas: { vmsPerUser: 2.5 }\n`)).toMatchInlineSnapshot(`"policy <file>: quotas.perUser.vms: must be a whole number (got 2.5)"`);
  });

  it("an out-of-range enum value", () => {
    expect(failure(`${MINIMAL}remediation: { withoutHotAdd: reboot }\n`)).toMatchInlineSnapshot(`"policy <file>: remediation.withoutHotAdd: must be one of: defer, skip, restart (got "reboot")"`);
  });

  it("the flap guard: strict, whole numbers in range", () => {
    expect(loadPolicy({ path: file(`${MINIMAL}remediation: { flap: { count: 3 } }\n`), env: {} }).remediation.flap).toEqual({ count: 3, withinMinutes: 30 });
    expect(failure(`${MINIMAL}remediation: { flap: { count: 1, withinMinutes: 2.5 } }\n`)).toContain("remediation.flap.count: must be ≥ 2 (got 1); remediation.flap.withinMinutes: must be a whole number (got 2.5)");
    expect(failure(`${MINIMAL}remediation: { flap: { times: 3 } }\n`)).toContain("remediation.flap.times: unknown field");
  });

  it("defaultSize not among the sizes", () => {
    expect(failure(MINIMAL.replace("defaultSize: small", "defaultSize: medium"))).toMatchInlineSnapshot(`"policy <file>: defaultSize: "medium" is not one of the sizes (small, big)"`);
  });

  it("a size above the limits", () => {
    expect(failure(MINIMAL.replace("big: { cpu: 4, memoryGB: 16", "big: { cpu: 8, memoryGB: 64"))).toMatchInlineSnapshot(`"policy <file>: sizes.big.cpu: must be ≤ limits.maxCpu (4); sizes.big.memoryGB: must be ≤ limits.maxMemoryGB (16)"`);
  });

  it("memory that vSphere cannot allocate (not a multiple of 4 MB)", () => {
    expect(failure(MINIMAL.replace("memoryGB: 0.125", "memoryGB: 0.1"))).toMatchInlineSnapshot(`"policy <file>: sizes.small.memoryGB: must be a whole number of 4 MB steps (for example 0.5, 2 or 16)"`);
  });

  it("a binding to an unknown role", () => {
    expect(failure(MINIMAL.replace("- role: builder", "- role: builders"))).toMatchInlineSnapshot(`"policy <file>: bindings[1].role: no role named "builders" (roles: viewer, builder)"`);
  });

  it("a binding that names nobody, or uses `*` as a user", () => {
    expect(failure(MINIMAL.replace("users: [U0BOB]", "users: []"))).toMatchInlineSnapshot(`"policy <file>: bindings[1].users: must list at least 1 entry"`);
    expect(failure(MINIMAL.replace("users: [U0BOB]", 'users: ["*"]'))).toMatchInlineSnapshot(`"policy <file>: bindings[1].users[0]: must be a Slack user id like U012ABC (for every user, write \`everyone: true\`)"`);
    expect(failure(MINIMAL.replace("everyone: true", "everyone: false"))).toMatchInlineSnapshot(`"policy <file>: bindings[0].everyone: must be true (leave it out rather than writing false)"`);
  });

  it("a role naming an unknown command, or with a bad name", () => {
    expect(failure(MINIMAL.replace("[create, delete]", "[create, destroy]"))).toMatchInlineSnapshot(`"policy <file>: roles.builder[1]: unknown command "destroy" (commands: help, list, info, templates, sizes, quota, create, clone, deploy, power.on, power.off, power.reset, power.suspend, power.shutdown, power.reboot, resize, delete, owner, snapshot.list, snapshot.create, snapshot.revert, snapshot.delete, lease, lease.extend, lease.set, approvals, echo, audit, remediation, power.*, snapshot.*, lease.*, *)"`);
    expect(failure(MINIMAL.replace("  builder:", "  Builder:"))).toMatchInlineSnapshot(`"policy <file>: roles: "Builder" is not a valid role name: must be 1-32 lowercase letters, digits, - or _, starting with a letter"`);
  });

  it("a confirm entry naming an unknown command", () => {
    expect(failure(`${MINIMAL}confirm: [delete, power.kill]\n`)).toMatchInlineSnapshot(`"policy <file>: confirm[1]: unknown command "power.kill" (commands: help, list, info, templates, sizes, quota, create, clone, deploy, power.on, power.off, power.reset, power.suspend, power.shutdown, power.reboot, resize, delete, owner, snapshot.list, snapshot.create, snapshot.revert, snapshot.delete, lease, lease.extend, lease.set, approvals, echo, audit, remediation, power.*, snapshot.*, lease.*, *)"`);
  });

  it("a bad regex, and a pattern without its description", () => {
    expect(failure(`${MINIMAL}naming: { pattern: "^[a-z+$", description: "lowercase" }\n`)).toMatchInlineSnapshot(`"policy <file>: naming.pattern: is not a valid regular expression: Invalid regular expression: /^[a-z+$/: Unterminated character class"`);
    expect(failure(`${MINIMAL}naming: { pattern: "^[a-z]+$" }\n`)).toMatchInlineSnapshot(`"policy <file>: naming.description: is required when naming.pattern is set (it is what users read when a name is refused)"`);
  });

  it("placement without a datacenter, or a folder that is not a path", () => {
    expect(failure(`${MINIMAL}placement: { folder: vm }\n`)).toMatchInlineSnapshot(`"policy <file>: placement.datacenter: is required; placement.folder: must be an inventory path starting with / (for example /DC0/vm/prod)"`);
  });

  it("a vCenter section with a bad id, an unknown field or a placement without a datacenter", () => {
    expect(failure(`${MINIMAL}vcenters:\n  DR_site: { limits: { maxCpu: 2 } }\n  lab: { limits: { maxGpu: 1 }, placement: { folder: /x } }\n`)).toMatchInlineSnapshot(`"policy <file>: vcenters: "DR_site" is not a valid key: must be a vCenter id: 1 to 32 of a-z, 0-9 and -; vcenters.lab.placement.datacenter: is required; vcenters.lab.limits.maxGpu: unknown field (allowed here: maxCpu, maxMemoryGB, maxDiskGB)"`);
  });

  it("a bad id in IAAS_ADMINS names the variable", () => {
    const withAdmin = MINIMAL.replace("roles:\n", 'roles:\n  admin: ["*"]\n');
    expect(loadPolicy({ path: file(withAdmin), env: { IAAS_ADMINS: " U0ADMIN , ,U0ADMIN2 " } }).rolesOf({ userId: "U0ADMIN2", via: "slack" })).toContain("admin");
    expect(failure(withAdmin, { IAAS_ADMINS: "U0ADMIN,alice" })).toMatchInlineSnapshot(`"policy <file>: IAAS_ADMINS: "alice" is not a Slack user id like U012ABC"`);
  });

  it("IAAS_ADMINS with no admin role in the policy", () => {
    expect(failure(MINIMAL, { IAAS_ADMINS: "U0ADMIN" })).toMatchInlineSnapshot(`"policy <file>: IAAS_ADMINS: the policy has no role named admin to bind these users to"`);
  });

  it("reports every problem at once, in file order", () => {
    expect(
      failure(MINIMAL.replace("defaultSize: small", "defaultSize: 7").replace("maxCpu: 4", "maxCpu: 0")),
    ).toMatchInlineSnapshot(`"policy <file>: defaultSize: must be text (got 7); limits.maxCpu: must be ≥ 1 (got 0)"`);
  });
});
