import { describe, expect, it } from "vitest";
import { COMMAND_IDS } from "@iaas/policy";
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
    expect(Verbs.filter((v) => VerbRecords[v].kind === "remote")).toEqual(["list", "info", "templates", "quota", "lease", "audit", "approvals", "remediation"]);
    // `snapshot list` is a query, `snapshot create|revert|delete` are actions.
    expect(Verbs.filter((v) => VerbRecords[v].kind === "split")).toEqual(["snapshot"]);
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
});
