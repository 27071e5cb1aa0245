import { describe, expect, it } from "vitest";
import { COMMAND_IDS } from "@iaas/policy";
import { Verbs } from "../src/commands/parse.js";
import { VerbRecords } from "../src/commands/verbs.js";

describe("verb records", () => {
  it("every policy command id belongs to exactly one verb, so help and the role check agree", () => {
    const owners = new Map<string, string[]>();
    for (const v of Verbs) for (const id of VerbRecords[v].ids) owners.set(id, [...(owners.get(id) ?? []), v]);
    expect(Object.fromEntries(COMMAND_IDS.map((id) => [id, owners.get(id) ?? []]))).toEqual(Object.fromEntries(COMMAND_IDS.map((id) => [id, [expect.any(String)]])));
    expect([...owners.keys()].filter((id) => !(COMMAND_IDS as readonly string[]).includes(id))).toEqual([]);
  });

  it("actions and queries", () => {
    expect(Verbs.filter((v) => VerbRecords[v].kind === "action")).toEqual(["create", "clone", "deploy", "power", "resize", "delete", "owner"]);
    expect(Verbs.filter((v) => VerbRecords[v].kind === "remote")).toEqual(["list", "info", "templates", "quota", "audit", "approvals", "remediation"]);
  });
});
