import { createHash } from "node:crypto";
import { z } from "zod";
import { ApprovalIdSchema, CommandSchema, type Command } from "./commands.js";
import { IsoTimeSchema, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema } from "./common.js";
import { CodedErrorSchema, IaasError } from "./errors.js";

/**
 * How long an approved request may still be run after the decision. The gateway publishes it at
 * once; the margin covers a queue that is slow to drain, and stops an old yes from being replayed
 * long after (with a command of the same id, the only one it holds for).
 */
export const APPROVAL_USE_MS = 7 * 24 * 60 * 60 * 1000;

export const ApprovalStateSchema = z.enum(["pending", "approved", "rejected", "expired"]);
export type ApprovalState = z.infer<typeof ApprovalStateSchema>;

/** One approver's answer; the requester never gives one. */
export const ApprovalDecisionSchema = z.strictObject({
  userId: SlackUserIdSchema,
  decision: z.enum(["approve", "reject"]),
  at: IsoTimeSchema,
  reason: z.string().max(500).optional(),
});
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;

/**
 * A request that waits for a human yes, in the `iaas_approvals` bucket under its id. It holds the
 * command exactly as it will run (already checked by the gateway, `approvalId` set to this id):
 * an approval publishes that command and nothing else, and the command service compares what
 * arrives with it (`checkApprovalRecord`). `state` leaves `pending` once, by compare-and-set, so
 * two approvers (or two gateway replicas) settle it once.
 */
export const ApprovalRecordSchema = z.strictObject({
  id: ApprovalIdSchema,
  state: ApprovalStateSchema,
  command: CommandSchema,
  /** `vm.create`, `vm.resize`: the metric and audit label. */
  verb: z.string().max(40),
  /** The VM it is about (the new name for create, clone, deploy). */
  vm: z.string().max(255).optional(),
  /** What the card says is asked, mrkdwn (`Create \`big-01\` (xlarge: 8 vCPU, 32 GB, 200 GB disk)`). */
  summary: z.string().max(3000),
  requester: SlackUserIdSchema,
  teamId: SlackTeamIdSchema,
  /** Where the request was typed, and what. */
  channelId: SlackChannelIdSchema,
  text: z.string().max(4000),
  /** The request's response_url (Slack's, checked): the reply target of the approved command, and a way to tell the requester when no DM can be sent. */
  responseUrl: z.string().min(1).max(2000).optional(),
  /** The rule that matched, why (in words), its approvers in words, and how many must say yes. */
  rule: z.string().max(64),
  why: z.string().max(500),
  approvers: z.string().max(3000),
  minApprovals: z.number().int().min(1).max(10),
  /** The request was over quota when asked (a `quotaOverrun` rule): on approval its share is taken without the quota check. */
  overQuota: z.boolean().optional(),
  /** The requester's quota use after the request, in words, when a quota applies. */
  quotaAfter: z.string().max(500).optional(),
  decisions: z.array(ApprovalDecisionSchema).max(20),
  createdAt: IsoTimeSchema,
  expiresAt: IsoTimeSchema,
  /** When the reminder goes out (half the time), and whether it did. */
  remindAt: IsoTimeSchema,
  reminded: z.boolean(),
  /** When it left `pending`. */
  decidedAt: IsoTimeSchema.optional(),
  /** The card in the approvers' channel, once posted (for chat.update). */
  card: z.strictObject({ channel: SlackChannelIdSchema, ts: z.string().min(1).max(32) }).optional(),
  /** Set once the approved command was published (a replica that crashed before leaves it unset: the sweep publishes it). */
  published: z.boolean().optional(),
  /** Why the approved command could not run after all (its quota share refused), set with `published`: what the requester is told. */
  refused: CodedErrorSchema.optional(),
  /** Set once the settled request's audit records were stored (a replica that crashed before leaves it unset: the sweep stores them, under the same ids). */
  audited: z.boolean().optional(),
  /** A replica telling the requester now, until then (another replica tells them after, when it died first). */
  tellingUntil: IsoTimeSchema.optional(),
  /** Set once the requester was told of the decision. */
  told: z.boolean().optional(),
});
export type ApprovalRecord = z.infer<typeof ApprovalRecordSchema>;

/**
 * `iaas.audit.approval`: one record per transition of a request (asked, reminded, approved,
 * rejected, expired, a refused click); `id` is the approval's id.
 */
export const ApprovalAuditSchema = z.strictObject({
  kind: z.literal("approval"),
  id: ApprovalIdSchema,
  /** The command waiting. */
  request: z.string().max(64),
  command: z.string().max(40),
  vm: z.string().max(255).optional(),
  rule: z.string().max(64),
  decision: z.enum(["requested", "reminded", "approved", "rejected", "expired", "refused"]),
  /** Who made the transition: the requester, an approver, or nobody (the expiry sweep). */
  by: SlackUserIdSchema.optional(),
  reason: z.string().max(500).optional(),
  message: z.string().max(3000),
  at: IsoTimeSchema,
});
export type ApprovalAudit = z.infer<typeof ApprovalAuditSchema>;

/**
 * The approval id of a request: derived from the command id, so a Slack retry of the same request
 * finds the record it made instead of making a second one.
 */
export function approvalIdFor(commandId: string): string {
  const id = `ap-${commandId}`;
  if (id.length <= 64) return id;
  return `ap-${createHash("sha256").update(commandId).digest("base64url").slice(0, 40)}`;
}

/** The distinct approvers who said yes, in order. */
export function approversOf(record: Pick<ApprovalRecord, "decisions">): string[] {
  return [...new Set(record.decisions.filter((d) => d.decision === "approve").map((d) => d.userId))];
}

/** What must be equal for a command to be the one approved: all of it but when it was issued and the actor's groups. */
function essence(cmd: Command): unknown {
  const { issuedAt: _at, actor, approvalId: _a, ...rest } = cmd as Command & { approvalId?: string };
  return { ...rest, requester: actor.userId, teamId: actor.teamId };
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * Throws IAAS_APPROVAL_INVALID unless `record` is an approved request for exactly `command`: the
 * same id, verb, VM, size (or vCPU and memory), lease, team and requester, and `command` names
 * this record as its approval; and the decision is at most APPROVAL_USE_MS old at `now`. Pure.
 */
export function checkApprovalRecord(record: ApprovalRecord, command: Command, now: number): void {
  const approvalId = (command as { approvalId?: string }).approvalId;
  if (approvalId !== record.id) {
    throw new IaasError("IAAS_APPROVAL_INVALID", `Approval \`${record.id}\` is not the one this command names; nothing was done.`);
  }
  if (record.state !== "approved") {
    const state = record.state === "pending" ? "still waits for an approver" : `was ${record.state}`;
    throw new IaasError("IAAS_APPROVAL_INVALID", `Approval \`${record.id}\` ${state}; nothing was done.`);
  }
  if (canonical(essence(record.command)) !== canonical(essence(command))) {
    throw new IaasError("IAAS_APPROVAL_INVALID", `Approval \`${record.id}\` was given for another command (request \`${record.command.id}\`: ${record.verb}${record.vm ? ` \`${record.vm}\`` : ""} requested by ${record.requester}); nothing was done.`);
  }
  const decided = Date.parse(record.decidedAt ?? record.createdAt);
  if (now - decided > APPROVAL_USE_MS) {
    throw new IaasError("IAAS_APPROVAL_INVALID", `Approval \`${record.id}\` was given too long ago to run now; nothing was done. Ask again.`);
  }
}
