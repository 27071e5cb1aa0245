import { describe, expect, it } from "vitest";
import { APPROVAL_USE_MS, approvalIdFor, checkApprovalRecord, type ApprovalRecord, type Command } from "../src/mod.js";

const command: Command = {
  id: "r-aaaaaaaaaaaaaaaaaaaaaaaa",
  area: "vm",
  action: "create",
  name: "big-01",
  size: "xlarge",
  actor: { userId: "UALICE", teamId: "T0001", via: "slack" },
  issuedAt: "2026-12-07T10:00:00.000Z",
  approvalId: approvalIdFor("r-aaaaaaaaaaaaaaaaaaaaaaaa"),
};
const record: ApprovalRecord = {
  id: approvalIdFor(command.id),
  state: "approved",
  command,
  verb: "vm.create",
  vm: "big-01",
  summary: "Creating `big-01`",
  requester: "UALICE",
  teamId: "T0001",
  channelId: "C0001",
  text: "create big-01 xlarge",
  responseUrl: "https://hooks.slack.com/commands/x",
  rule: "big-sizes",
  why: "size `xlarge` needs an approval",
  approvers: "<@UADMIN>",
  minApprovals: 1,
  decisions: [{ userId: "UADMIN", decision: "approve", at: "2026-12-07T10:01:00.000Z" }],
  createdAt: "2026-12-07T10:00:00.000Z",
  expiresAt: "2026-12-08T10:00:00.000Z",
  remindAt: "2026-12-07T22:00:00.000Z",
  reminded: false,
  decidedAt: "2026-12-07T10:01:00.000Z",
};
const at = Date.parse("2026-12-07T10:02:00.000Z");
const refusal = (r: ApprovalRecord, c: Command, now = at) => {
  try {
    checkApprovalRecord(r, c, now);
    return "accepted";
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe("checkApprovalRecord: an approval holds for exactly its command", () => {
  it("accepts the approved command, whatever its groups or issue time", () => {
    expect(refusal(record, { ...command, issuedAt: "2026-12-07T11:00:00.000Z", actor: { ...command.actor, groups: ["S0PLATFORM"] } })).toBe("accepted");
  });
  it("refuses another VM, size, lease, requester or command id, and a command naming another approval", () => {
    expect(refusal(record, { ...command, name: "big-02" } as Command)).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, size: "large" } as Command)).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, leaseMs: 3_600_000 } as Command)).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, actor: { ...command.actor, userId: "UBOB" } })).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, id: "r-bbbbbbbbbbbbbbbbbbbbbbbb" })).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, approvalId: "ap-r-bbbbbbbbbbbbbbbbbbbbbbbb" } as Command)).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, { ...command, area: "vm", action: "deploy", template: "t" } as unknown as Command)).toBe("IAAS_APPROVAL_INVALID");
  });
  it("refuses a record that is not approved, or was approved too long ago", () => {
    for (const state of ["pending", "rejected", "expired"] as const) expect(refusal({ ...record, state }, command)).toBe("IAAS_APPROVAL_INVALID");
    expect(refusal(record, command, Date.parse(record.decidedAt!) + APPROVAL_USE_MS + 1)).toBe("IAAS_APPROVAL_INVALID");
  });
  it("derives the approval id from the command id, within the id's 64 characters", () => {
    expect(approvalIdFor("r-aaaaaaaaaaaaaaaaaaaaaaaa")).toBe("ap-r-aaaaaaaaaaaaaaaaaaaaaaaa");
    expect(approvalIdFor("x".repeat(64))).toMatch(/^ap-[A-Za-z0-9_-]{40}$/);
  });
});
