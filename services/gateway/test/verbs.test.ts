import { describe, expect, it } from "vitest";
import { COMMAND_IDS, DEFAULT_POLICY, policyFromObject } from "@iaas/policy";
import { Verbs, parseCommand } from "../src/commands/parse.js";
import { VerbRecords, grantsOf, labelOf, recordOf } from "../src/commands/verbs.js";

describe("verb records", () => {
  it("every policy command id belongs to exactly one verb, so help and the role check agree", () => {
    const owners = new Map<string, string[]>();
    for (const v of Verbs) for (const id of VerbRecords[v].ids) owners.set(id, [...(owners.get(id) ?? []), v]);
    expect(Object.fromEntries(COMMAND_IDS.map((id) => [id, owners.get(id) ?? []]))).toEqual(Object.fromEntries(COMMAND_IDS.map((id) => [id, [expect.any(String)]])));
    expect([...owners.keys()].filter((id) => !(COMMAND_IDS as readonly string[]).includes(id))).toEqual([]);
  });

  it("actions and queries", () => {
    expect(Verbs.filter((v) => VerbRecords[v].kind === "action")).toEqual(["create", "clone", "deploy", "power", "resize", "delete", "owner", "extend"]);
    expect(Verbs.filter((v) => VerbRecords[v].kind === "remote")).toEqual(["list", "info", "templates", "quota", "audit", "approvals", "remediation"]);
    // `snapshot list` is a query, `snapshot create|revert|delete` are actions; so are `lease <vm>` and `lease <vm> set|none`.
    expect(Verbs.filter((v) => VerbRecords[v].kind === "split")).toEqual(["snapshot", "lease"]);
  });

  it("snapshot: each form is its own record, granted by its own command id", () => {
    const forms = (["list <vm>", "create <vm>", "revert <vm>", "delete <vm> a"] as const).map((t) => parseCommand(`snapshot ${t.replace("<vm>", "web-01")}`));
    const cmds = forms.map((f) => (f.success ? f.data : undefined)!);
    expect(cmds.map((c) => [recordOf(c).kind, grantsOf(c), labelOf(c)])).toEqual([
      ["remote", ["snapshot.list"], "snapshot.list"],
      ["action", ["snapshot.create"], "snapshot.create"],
      ["action", ["snapshot.revert"], "snapshot.revert"],
      ["action", ["snapshot.delete"], "snapshot.delete"],
    ]);
  });

  it("lease: showing it is a query; set and none are actions, run as lease.set or, with lease.extend only, as an extend", () => {
    const parsed = (t: string) => {
      const p = parseCommand(t);
      if (!p.success) throw new Error(p.error.message);
      return p.data;
    };
    const [show, set, until, none] = ["lease web-01", "lease web-01 set 3d", "lease web-01 set 2031-01-31", "lease web-01 none"].map(parsed);
    expect(until).toEqual({ verb: "lease", vm: "web-01", until: "2031-01-31T00:00:00.000Z" });
    expect(parsed("lease web-01 set 2031-01-31t18:30z")).toEqual({ verb: "lease", vm: "web-01", until: "2031-01-31T18:30:00.000Z" });
    expect(parseCommand("lease web-01 set 2031-02-30").success).toBe(false);
    expect([show, set, until, none].map((c) => [recordOf(c!).kind, grantsOf(c!), labelOf(c!)])).toEqual([
      ["remote", ["lease"], "lease"],
      ["action", ["lease.set", "lease.extend"], "lease.set"],
      ["action", ["lease.set", "lease.extend"], "lease.set"],
      ["action", ["lease.set"], "lease.set"],
    ]);
    const policy = policyFromObject(DEFAULT_POLICY, { source: "test", env: { IAAS_ADMINS: "UADMIN" } });
    const runAs = (c: typeof set, userId: string) => {
      const r = recordOf(c!);
      if (r.kind !== "action") throw new Error("not an action");
      const as = r.runAs?.(c!, { policy, actor: { userId, via: "slack" } }) ?? r;
      return [as.target!(c!).id, as.command(c!, { id: "r-aaaaaaaaaaaaaaaaaaaaaaaa", actor: { userId, via: "slack" }, issuedAt: "2030-01-31T00:00:00.000Z" })];
    };
    // An admin sets; an owner (lease.extend only) extends to that length, approvals and all; removing stays lease.set.
    expect(runAs(set, "UADMIN")).toMatchObject(["lease.set", { area: "lease", action: "set", durationMs: 3 * 86_400_000 }]);
    expect(runAs(until, "UALICE")).toMatchObject(["lease.extend", { area: "lease", action: "extend", durationMs: 365 * 86_400_000 }]);
    expect(runAs(none, "UALICE")).toMatchObject(["lease.set", { action: "set", durationMs: null }]);
  });
});
