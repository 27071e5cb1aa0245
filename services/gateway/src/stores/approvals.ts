import { ApprovalRecordSchema, type Actor, type ApprovalRecord } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { kvKeys, readKvJson, type KV, type Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

export interface StoredApproval {
  record: ApprovalRecord;
  revision: number;
}

/** How many requests `all` reads at most (one sweep, one `/iaas approvals`). */
const MAX_SCAN = 2_000;

/**
 * The `iaas_approvals` bucket, one key per request (its approval id). Every change is a
 * compare-and-set on the revision read, so two clicks, two replicas or a click and the expiry
 * sweep settle a request once; whoever's write lands does what follows (publish, card, DM).
 */
export class ApprovalStore {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** Stores a new request; `false` when one exists under its id already (a Slack retry). */
  async create(rec: ApprovalRecord, timeoutMs: number): Promise<boolean> {
    try {
      await this.kv.put(rec.id, JSON.stringify(ApprovalRecordSchema.parse(rec)), { previousSeq: 0, timeout: timeoutMs });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    const r = await readKvJson(this.kv, id, ApprovalRecordSchema, this.log, "approval record");
    return r && { record: r.value, revision: r.revision };
  }

  /** Writes `next` over `cur`; the new revision, or undefined when someone changed it first (read it again). */
  async update(cur: StoredApproval, next: ApprovalRecord): Promise<number | undefined> {
    try {
      return await this.kv.update(next.id, JSON.stringify(ApprovalRecordSchema.parse(next)), cur.revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }

  /** Every request in the bucket (at most MAX_SCAN), oldest key first. */
  async all(): Promise<StoredApproval[]> {
    const keys = (await kvKeys(this.kv, ">")).slice(0, MAX_SCAN);
    const out: StoredApproval[] = [];
    for (let i = 0; i < keys.length; i += 25) {
      const got = await Promise.all(keys.slice(i, i + 25).map((k) => this.get(k).catch(() => undefined)));
      for (const g of got) if (g) out.push(g);
    }
    return out;
  }

  /**
   * The pending requests that wait for `actor`: those they asked for, and those they may decide
   * (an approver of the request's rule, never their own). For `/iaas approvals` and the App Home.
   */
  async pendingFor(actor: Actor, policy: Policy): Promise<{ asked: ApprovalRecord[]; toDecide: ApprovalRecord[] }> {
    const pending = (await this.all()).map((s) => s.record).filter((r) => r.state === "pending");
    const asked = pending.filter((r) => r.requester === actor.userId);
    const toDecide = pending.filter((r) => r.requester !== actor.userId && mayDecide(policy, actor, r));
    const byAge = (a: ApprovalRecord, b: ApprovalRecord) => a.createdAt.localeCompare(b.createdAt);
    return { asked: asked.sort(byAge), toDecide: toDecide.sort(byAge) };
  }
}

/** Whether `actor` is an approver of the request's rule as the policy has it now (a rule since removed: nobody). */
export function mayDecide(policy: Policy, actor: Actor, rec: Pick<ApprovalRecord, "rule" | "requester">): boolean {
  if (actor.userId === rec.requester) return false;
  const rule = policy.approvalRules.find((r) => r.name === rec.rule);
  return rule !== undefined && policy.isApprover(actor, rule);
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
