import { ApprovalRecordSchema, IaasError, approversOf, checkApprovalRecord, type Command } from "@iaas/contracts";
import type { KV } from "./jetstream.js";

/** What `policy.approvalFor(facts)` answers when a rule matches (`ApprovalMatch` of @iaas/policy). */
export interface ApprovalMatchLike {
  rule: { name: string };
  why: string;
}

/** Timeout of the record's read. */
const READ_TIMEOUT_MS = 3_000;

/**
 * The approval check of a command service, the same for every command a rule can match: `match`
 * is the caller's `policy.approvalFor(facts)` for this command. No rule matched: nothing needed
 * (undefined). A rule matched and the command names no approval: IAAS_APPROVAL_REQUIRED, naming the
 * rule and why. Otherwise the record (bucket `iaas_approvals`) must be approved and be for exactly
 * this command (`checkApprovalRecord`): IAAS_APPROVAL_INVALID when it is not or does not exist.
 * Answers who approved, for the result and the audit record.
 */
export async function requireApproval(a: { kv: KV; command: Command; match: ApprovalMatchLike | undefined; now?: number }): Promise<{ approvalId: string; approvedBy: string[] } | undefined> {
  if (!a.match) return undefined;
  const id = (a.command as { approvalId?: string }).approvalId;
  if (id === undefined) {
    throw new IaasError(
      "IAAS_APPROVAL_REQUIRED",
      `This needs an approval first: ${a.match.why} (approval rule \`${a.match.rule.name}\`). Ask for it from Slack, where the request waits for an approver; nothing was done.`,
    );
  }
  let entry;
  try {
    entry = await withTimeout(a.kv.get(id), READ_TIMEOUT_MS);
  } catch (err) {
    throw new IaasError("IAAS_UNAVAILABLE", "The approval could not be read right now; the command will be tried again.", { cause: err });
  }
  if (!entry || entry.operation !== "PUT" || entry.length === 0) {
    throw new IaasError("IAAS_APPROVAL_INVALID", `There is no approval \`${id}\`; nothing was done.`);
  }
  let raw: unknown;
  try {
    raw = entry.json();
  } catch {
    raw = undefined;
  }
  const record = ApprovalRecordSchema.safeParse(raw);
  if (!record.success) throw new IaasError("IAAS_APPROVAL_INVALID", `Approval \`${id}\` cannot be read; nothing was done.`);
  checkApprovalRecord(record.data, a.command, a.now ?? Date.now());
  return { approvalId: id, approvedBy: approversOf(record.data) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
