import { z } from "zod";
import {
  ApprovalIdSchema,
  IaasError,
  ProxyEndpoints,
  SlackUserIdSchema,
  approvalIdFor,
  approversOf,
  formatIssues,
  type Actor,
  type ApprovalAudit,
  type ApprovalRecord,
  type Command,
} from "@iaas/contracts";
import type { ApprovalMatch, Policy } from "@iaas/policy";
import { newTraceparent, quotaKey, quotaShareOf, requestJson, usageAcross, type JetStreamClient, type Logger, type NatsConnection } from "@iaas/runtime";
import type { Auditor } from "../stores/audit.js";
import { mayDecide, type ApprovalStore, type StoredApproval } from "../stores/approvals.js";
import type { QuotaGate, QuotaHold } from "../stores/quotas.js";
import type { RequestStore } from "../stores/requests.js";
import { RESPONSE_URL_TTL_MS } from "../stores/requests.js";
import { button, context, fields, section, type Block } from "../presentation/blocks.js";
import { code, escape } from "../presentation/mrkdwn.js";
import { errorText } from "../presentation/render.js";
import type { SlackApi } from "../transport/slack.js";
import { postToResponseUrl, type SlackMessage } from "../transport/reply.js";
import type { GroupReader } from "./call.js";
import type { GatewayMetrics } from "../metrics.js";
import { CommandPublisher } from "./publish.js";

/** Action ids of the card's buttons (under `iaas.`, which the transport routes); the value is the approval id. */
export const APPROVE_ACTION = "iaas.approval.approve";
export const REJECT_ACTION = "iaas.approval.reject";

/** How often each replica looks for requests to remind about, expire, or publish after a crash. */
export const DEFAULT_SWEEP_MS = 5_000;
/** An approved request not marked published this long after the decision is published by the sweep (its replica died). */
const REPUBLISH_AFTER_MS = 30_000;
const STORE_TIMEOUT_MS = 1_000;
/** How long a replica telling a requester holds the claim (past it, another replica tells them: this one died). */
const TELL_CLAIM_MS = 60_000;
const QUOTA_LOOKUP_TIMEOUT_MS = 1_500;

const ClickSchema = z.object({
  type: z.literal("block_actions"),
  user: z.object({ id: z.string() }),
  team: z.object({ id: z.string() }).nullish(),
  response_url: z.string().min(1).optional(),
  trigger_id: z.string().min(1).max(255).optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).min(1),
});

/** The callback id of the Reject modal; its private_metadata is the approval id, nothing else. */
export const REJECT_VIEW = "iaas.approval.reject-reason";
/** The reason field of the Reject modal (block and action ids) and its longest answer (as the record keeps it). */
export const REASON_BLOCK = "reason";
const REASON_ACTION = "value";
export const MAX_REASON = 500;

const ReasonSubmissionSchema = z.object({
  type: z.literal("view_submission"),
  user: z.object({ id: SlackUserIdSchema }),
  team: z.object({ id: z.string() }).nullish(),
  view: z.object({
    callback_id: z.literal(REJECT_VIEW),
    private_metadata: z.string().max(3000).default(""),
    state: z.object({ values: z.record(z.string(), z.record(z.string(), z.unknown())) }).default({ values: {} }),
  }),
});

const NO_LONGER_VALID = ":hourglass: This request is no longer valid; nothing was done.";

/** What a click or a submission comes to: words for the clicker (only they see them), and the work a transition sets off. */
interface Outcome {
  say?: string;
  after?: () => Promise<void>;
}

export interface ApprovalDeskDeps {
  store: ApprovalStore;
  requests: RequestStore;
  js: JetStreamClient;
  nc: NatsConnection;
  quotas: QuotaGate;
  auditor: Auditor;
  policy: Policy;
  /** The Slack Web API as the bot; undefined without SLACK_BOT_TOKEN (no card, no DM: `/iaas approvals` still decides). */
  api: SlackApi | undefined;
  /** SLACK_APPROVALS_CHANNEL, else SLACK_NOTIFY_CHANNEL: where a rule without `channel` posts its cards. */
  channel: string | undefined;
  /** The clicker's groups now (usergroups.ts), for approver groups and roles bound to groups. */
  groups: Pick<GroupReader, "groupsOf">;
  allowed: (url: string) => boolean;
  log: Logger;
  now: () => number;
  sweepMs?: number;
  /** What each sweep saw: requests waiting for a decision and the oldest one's age. */
  metrics?: Pick<GatewayMetrics, "approvalsPending" | "approvalOldestPendingSeconds">;
}

/** What a request for approval is made of, from the checked slash command. */
export interface ApprovalAsk {
  command: Command;
  match: ApprovalMatch;
  overQuota: boolean;
  verb: string;
  vm: string | undefined;
  summary: string;
  p: { user_id: string; team_id: string; channel_id: string; text: string; response_url?: string | undefined };
}

const at = (iso: string) => `<!date^${Math.floor(Date.parse(iso) / 1000)}^{date_short_pretty} {time}|${iso}>`;

/**
 * Requests that wait for a human yes (policy `approvals`): stored in `iaas_approvals`, shown as a
 * card with Approve / Reject in the approvers' channel, decided by compare-and-set, reminded at
 * half their time and expired by a sweep every replica runs on the bucket. Only the replica whose
 * write lands acts on a transition (posts, publishes), so any number of replicas and restarts
 * act once per transition. An approved command is published exactly as stored, with its
 * `approvalId`, through the normal publisher: its results reach the requester like any other's.
 */
export class ApprovalDesk {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;
  private readonly publisher: CommandPublisher;

  constructor(private readonly d: ApprovalDeskDeps) {
    this.publisher = new CommandPublisher({ js: d.js, requests: d.requests });
  }

  // ---- asking --------------------------------------------------------------------------------

  /** Stores the request (a Slack retry finds the one it made), posts the card, and answers the requester's ack. */
  async ask(a: ApprovalAsk, log: Logger): Promise<SlackMessage> {
    const { rule, why } = a.match;
    const now = this.d.now();
    const id = approvalIdFor(a.command.id);
    const ttl = rule.expireAfterMinutes * 60_000;
    const approvers = this.d.policy.describeApprovers(rule);
    const rec: ApprovalRecord = {
      id,
      state: "pending",
      command: { ...a.command, approvalId: id } as Command,
      verb: a.verb,
      ...(a.vm ? { vm: a.vm } : {}),
      summary: a.summary.slice(0, 3000),
      requester: a.p.user_id,
      teamId: a.p.team_id,
      channelId: a.p.channel_id,
      text: a.p.text.slice(0, 4000),
      ...(a.p.response_url ? { responseUrl: a.p.response_url } : {}),
      rule: rule.name,
      why: why.slice(0, 500),
      approvers: approvers.slice(0, 3000),
      minApprovals: rule.minApprovals,
      ...(a.overQuota ? { overQuota: true } : {}),
      ...(await this.quotaAfter(a.command, log)),
      decisions: [],
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttl).toISOString(),
      remindAt: new Date(now + ttl / 2).toISOString(),
      reminded: false,
    };
    const created = await this.d.store.create(rec, STORE_TIMEOUT_MS);
    const stored = created ? { record: rec, revision: 0 } : await this.d.store.get(id);
    if (!stored) throw new IaasError("IAAS_UNAVAILABLE", "The request for approval could not be stored; nothing was done. Try again in a minute.");
    if (created) {
      log.info({ approvalId: id, rule: rule.name }, "waiting for approval");
      this.audit(rec, "requested", rec.requester, `${rec.verb}${rec.vm ? ` ${rec.vm}` : ""} waits for approval: ${why}`);
      // The card is posted after the ack's work is stored; a failure leaves the request decidable from `/iaas approvals`.
      void this.postCard(id, log);
    }
    return ackMessage(stored.record);
  }

  /** The requester's quota use once this request is added, in words; nothing when no quota applies or it cannot be read in time. */
  private async quotaAfter(command: Command, log: Logger): Promise<{ quotaAfter?: string }> {
    try {
      const call = { timeoutMs: QUOTA_LOOKUP_TIMEOUT_MS, requestId: command.id };
      const share = await quotaShareOf(this.d.nc, this.d.policy, command, call);
      if (!share) return {};
      const user = command.actor.userId;
      const [{ owner }, held] = await Promise.all([usageAcross(this.d.nc, this.d.quotas.vcenters, { owner: user }, call), this.d.quotas.held(quotaKey.user(user))]);
      const limits = this.d.policy.quotaOf("user", user);
      const used = owner ?? { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 };
      const parts: string[] = [];
      const unit = { vms: " VMs", cpu: " vCPU", memoryGB: " GB memory", diskGB: " GB disk" } as const;
      for (const k of ["vms", "cpu", "memoryGB", "diskGB"] as const) {
        const limit = limits[k];
        if (limit === undefined) continue;
        const after = Math.round((used[k] + held.usage[k] + share.request[k]) * 10) / 10;
        parts.push(`${after} of ${limit}${unit[k]}${after > limit ? " (over)" : ""}`);
      }
      return parts.length ? { quotaAfter: parts.join(", ").slice(0, 500) } : {};
    } catch (err) {
      log.info({ err: IaasError.from(err).code }, "quota use for the approval card could not be read; the card goes without it");
      return {};
    }
  }

  /** Posts the card and remembers where, unless a card is there already. */
  private async postCard(id: string, log: Logger): Promise<void> {
    const cur = await this.d.store.get(id).catch(() => undefined);
    if (!cur || cur.record.card || !this.d.api) return;
    const rule = this.d.policy.approvalRules.find((r) => r.name === cur.record.rule);
    const channel = rule?.channel ?? this.d.channel;
    if (!channel) {
      log.warn({ approvalId: id }, "no channel for approval cards (SLACK_APPROVALS_CHANNEL, SLACK_NOTIFY_CHANNEL or the rule's channel): approvers decide with /iaas approvals");
      return;
    }
    try {
      const card = cardMessage(cur.record);
      const posted = await this.d.api.postMessage(channel, card.text, card.blocks);
      await this.change(id, (r) => (r.card ? undefined : { ...r, card: { channel: posted.channel, ts: posted.ts } }));
    } catch (err) {
      log.warn({ approvalId: id, reason: slackErrorOf(err) }, "the approval card could not be posted; approvers can decide with /iaas approvals");
    }
  }

  /** The pending requests `actor` asked for, and those they may decide (for `/iaas approvals` and the App Home). */
  pendingFor(actor: Actor): Promise<{ asked: ApprovalRecord[]; toDecide: ApprovalRecord[] }> {
    return this.d.store.pendingFor(actor, this.d.policy);
  }

  // ---- clicks and the Reject modal -------------------------------------------------------------

  /**
   * Approve or Reject, from the card, `/iaas approvals` or the App Home. The clicker is the
   * verified payload's user, nobody else. The requester, anyone who is not an approver, a click on
   * a decided or expired request, a second yes by the same approver: nothing changes, the clicker
   * is told why (on the click's response_url: only they see it). Reject by an approver who may
   * decide opens the reason modal (`views.open` with the click's trigger_id); the submission
   * decides (`submitReason`). When the modal cannot be opened (no bot token, no trigger, Slack
   * refused it) the click rejects at once, without a reason.
   */
  async click(body: unknown): Promise<void> {
    const parsed = ClickSchema.safeParse(body);
    if (!parsed.success) {
      this.d.log.warn(`approval click rejected: ${formatIssues(parsed.error)}`);
      return;
    }
    const p = parsed.data;
    const action = p.actions.find((x) => x.action_id === APPROVE_ACTION || x.action_id === REJECT_ACTION);
    if (!action) return;
    const responseUrl = p.response_url && this.d.allowed(p.response_url) ? p.response_url : undefined;
    const say = async (text: string) => {
      if (!responseUrl) return;
      const out = await postToResponseUrl(responseUrl, { response_type: "ephemeral", replace_original: false, text });
      if (!out.ok) this.d.log.warn({ detail: out.detail }, "response_url post failed");
    };
    const clicker = this.clicker(p.user.id, p.team?.id);
    const id = ApprovalIdSchema.safeParse(action.value);
    const log = this.d.log.child({ approvalId: id.success ? id.data : undefined, clicker: clicker.userId });
    if (!id.success) {
      await say(NO_LONGER_VALID);
      return;
    }
    const decision = action.action_id === APPROVE_ACTION ? "approve" : "reject";
    if (decision === "reject" && this.d.api && p.trigger_id) {
      const cur = await this.d.store.get(id.data);
      const no = cur ? this.refusal(cur, clicker, p.team?.id, log) : { say: NO_LONGER_VALID };
      if (no) return this.tell(no, say);
      if (await this.askReason(cur!.record, p.trigger_id, log)) return;
    }
    await this.tell(await this.decide(clicker, p.team?.id, id.data, decision, undefined, log), say);
  }

  /**
   * The Reject modal submitted: the reason checked, then the request rejected with it through the
   * same checks and compare-and-set as a click, the decider being the submission's verified user.
   * Answered in the modal: closed when it is rejected, else replaced by why nothing changed
   * (decided or expired meanwhile, not an approver, the requester).
   */
  async submitReason(body: unknown, ack: (answer?: Record<string, unknown>) => Promise<void>): Promise<void> {
    const parsed = ReasonSubmissionSchema.safeParse(body);
    if (!parsed.success) {
      const submitted = (body as { type?: unknown } | null)?.type === "view_submission";
      if (submitted) this.d.log.warn(`reject reason submission refused: ${formatIssues(parsed.error)}`);
      await ack(submitted ? { response_action: "update", view: noticeView(`:x: This form could not be read; nothing was done.`) } : undefined);
      return;
    }
    const s = parsed.data;
    const raw = (s.view.state.values[REASON_BLOCK]?.[REASON_ACTION] as { value?: unknown } | undefined)?.value;
    const reason = typeof raw === "string" ? raw.trim() : "";
    if (reason.length > MAX_REASON) {
      await ack({ response_action: "errors", errors: { [REASON_BLOCK]: `At most ${MAX_REASON} characters, please (this is ${reason.length}).` } });
      return;
    }
    const clicker = this.clicker(s.user.id, s.team?.id);
    const id = ApprovalIdSchema.safeParse(s.view.private_metadata);
    const log = this.d.log.child({ approvalId: id.success ? id.data : undefined, clicker: clicker.userId });
    if (!id.success) {
      await ack({ response_action: "update", view: noticeView(NO_LONGER_VALID) });
      return;
    }
    const out = await this.decide(clicker, s.team?.id, id.data, "reject", reason || undefined, log);
    await ack(out.say ? { response_action: "update", view: noticeView(out.say) } : undefined);
    await out.after?.();
  }

  private clicker(userId: string, teamId: string | undefined): Actor {
    return { userId, ...(teamId ? { teamId } : {}), ...groupsOf(this.d.groups, userId), via: "slack" } as Actor;
  }

  private async tell(out: Outcome, say: (text: string) => Promise<void>): Promise<void> {
    if (out.say) await say(out.say);
    await out.after?.();
  }

  /** Opens the reason modal for `rec`; false when Slack would not (the trigger is 3 s old or used, the token refused). */
  private async askReason(rec: ApprovalRecord, triggerId: string, log: Logger): Promise<boolean> {
    try {
      await this.d.api!.viewsOpen(triggerId, rejectView(rec));
      log.info("reject reason asked");
      return true;
    } catch (err) {
      log.info({ reason: slackErrorOf(err) }, "the reject modal could not be opened; rejecting without a reason");
      return false;
    }
  }

  /**
   * Why `clicker` may not decide the stored request now (what to tell them, and an expiry that is
   * due), or undefined when they may. A refusal of who clicks is audited.
   */
  private refusal(cur: StoredApproval, clicker: Actor, teamId: string | undefined, log: Logger): Outcome | undefined {
    const rec = cur.record;
    const refuse = (why: string, message: string): Outcome => {
      log.info({ why }, "approval click changed nothing");
      this.audit(rec, "refused", clicker.userId, message, why);
      return { say: `${message} (request ${code(rec.command.id)})` };
    };
    if (teamId && teamId !== rec.teamId) return refuse("other-workspace", ":no_entry: This request belongs to another workspace; nothing was done.");
    if (clicker.userId === rec.requester) return refuse("requester", ":no_entry: You asked for this, so you cannot decide it: one of its approvers must. Nothing was done.");
    if (!mayDecide(this.d.policy, clicker, rec)) return refuse("not-approver", `:no_entry: Only ${rec.approvers} may decide this request; nothing was done.`);
    if (rec.state !== "pending") {
      const who = rec.decisions.length ? ` by ${rec.decisions.map((x) => `<@${x.userId}>`).join(", ")}` : "";
      log.info({ state: rec.state }, "click on a decided approval");
      return { say: `:information_source: This request was already ${rec.state}${rec.state === "expired" ? "" : who}${rec.decidedAt ? ` (${at(rec.decidedAt)})` : ""}; nothing more was done. (request ${code(rec.command.id)})` };
    }
    if (this.d.now() > Date.parse(rec.expiresAt)) {
      return { say: `:hourglass: This request expired before anyone decided it; nothing was done. (request ${code(rec.command.id)})`, after: () => this.expire(cur, log) };
    }
    if (rec.decisions.some((x) => x.userId === clicker.userId)) {
      return { say: `:information_source: You already approved this; it waits for ${rec.minApprovals - approversOf(rec).length} more approver(s). (request ${code(rec.command.id)})` };
    }
    return undefined;
  }

  /**
   * One decision by `clicker`, by compare-and-set on the record (re-read and re-checked when
   * someone else wrote first): what to tell them, and what the transition sets off (the card,
   * the publish, the requester's DM), which the caller runs after answering Slack.
   */
  private async decide(clicker: Actor, teamId: string | undefined, id: string, decision: "approve" | "reject", reason: string | undefined, log: Logger): Promise<Outcome> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.d.store.get(id);
      if (!cur) {
        log.info("click on an unknown approval");
        return { say: NO_LONGER_VALID };
      }
      const no = this.refusal(cur, clicker, teamId, log);
      if (no) return no;
      const rec = cur.record;
      const iso = new Date(this.d.now()).toISOString();
      const decisions = [...rec.decisions, { userId: clicker.userId, decision, at: iso, ...(reason ? { reason } : {}) } as const];
      const enough = decision === "approve" && approversOf({ decisions }).length >= rec.minApprovals;
      const next: ApprovalRecord =
        decision === "reject" ? { ...rec, decisions, state: "rejected", decidedAt: iso } : enough ? { ...rec, decisions, state: "approved", decidedAt: iso } : { ...rec, decisions };
      const revision = await this.d.store.update(cur, next);
      if (revision === undefined) continue;
      log.info({ decision, state: next.state, withReason: reason !== undefined }, "approval decided");
      const stored = { record: next, revision };
      if (next.state === "pending") {
        const more = next.minApprovals - approversOf(next).length;
        this.audit(next, "approved", clicker.userId, `approved by ${clicker.userId}; ${more} more needed`);
        return { say: `:white_check_mark: Your approval is recorded; it waits for ${more} more approver(s). (request ${code(rec.command.id)})`, after: () => this.updateCard(next, log) };
      }
      // Audited after the compare-and-set from the record alone, under fixed ids: when this replica
      // dies before, the sweep of any replica stores the same records (auditSettled).
      if (next.state === "rejected") return { after: () => this.auditSettled(stored, log).then((s) => this.finish(s, log)) };
      return { after: () => this.auditSettled(stored, log).then((s) => this.runApproved(s, log)) };
    }
    log.warn("approval record changed too often meanwhile; the click was not recorded");
    return { say: ":warning: Too many changes to this request at once; nothing was done. Click again." };
  }

  /**
   * An approved request: its quota share taken (unchecked when an approver allowed it over quota),
   * then the stored command published (Nats-Msg-Id = its id: a second publish, by a sweep after a
   * crash, is dropped), marked published, the card updated and the requester told.
   */
  private async runApproved(stored: StoredApproval, log: Logger): Promise<void> {
    const rec = stored.record;
    let hold: QuotaHold | undefined;
    let refusal: IaasError | undefined;
    try {
      hold = await this.d.quotas.reserve(rec.command, newTraceparent(), { unchecked: rec.overQuota === true });
    } catch (err) {
      refusal = IaasError.from(err);
    }
    if (!refusal) {
      try {
        const target = {
          id: rec.command.id,
          // Slack's response_url lives 30 minutes from the request: past that, results go privately as the bot (Replier).
          responseUrl: rec.responseUrl,
          teamId: rec.teamId,
          channelId: rec.channelId,
          userId: rec.requester,
          text: rec.text,
          createdAt: rec.createdAt,
        };
        const remembered = this.publisher.remember(target, { posts: 0, timeoutMs: 5_000 });
        await this.publisher.publish(rec.command, remembered, { traceparent: newTraceparent(), timeoutMs: 5_000 });
        log.info("approved command published");
      } catch (err) {
        await this.d.quotas.release(hold);
        log.error({ err }, "could not publish an approved command; the sweep tries again");
        return;
      }
    } else {
      log.info({ code: refusal.code }, `approved command refused: ${refusal.message}`);
      this.d.auditor.rejected(rec.command.actor, rec.command.id, rec.verb, rec.vm, refusal.code, refusal.message, rec.command.vcenter);
    }
    const refused = refusal && { ...refusal.toJSON(), message: refusal.message.slice(0, 2000) };
    const marked = await this.change(rec.id, (r) => (r.published ? undefined : { ...r, published: true, ...(refused ? { refused } : {}) }));
    await this.finish(marked ?? stored, log, refusal);
  }

  /**
   * After a decision or expiry: the card edited in place and the requester told, then marked
   * `told`. The replica that tells holds `tellingUntil` meanwhile, so replicas sweeping at once tell
   * once; one that dies before marking `told` leaves it to the sweep once the claim has lapsed.
   */
  private async finish(stored: StoredApproval, log: Logger, refusal?: IaasError): Promise<void> {
    await this.updateCard(stored.record, log, refusal);
    const now = this.d.now();
    const claimed = await this.change(stored.record.id, (r) =>
      r.told || (r.tellingUntil && Date.parse(r.tellingUntil) > now) ? undefined : { ...r, tellingUntil: new Date(now + TELL_CLAIM_MS).toISOString() },
    );
    if (!claimed) return;
    await this.tellRequester(claimed.record, log, refusal);
    await this.change(stored.record.id, (r) => {
      if (r.told) return undefined;
      const { tellingUntil: _, ...rest } = r;
      return { ...rest, told: true };
    });
  }

  /**
   * The audit records of a settled request (approved, rejected, expired), made from the record
   * alone (who decided, the reason, when), so whichever replica stores them stores the same ones
   * under the same Nats-Msg-Ids (a repeat is dropped); then marked `audited`. Answers the record
   * as it is after (unchanged when the stream did not take them: the sweep tries again).
   */
  async auditSettled(stored: StoredApproval, log: Logger): Promise<StoredApproval> {
    const rec = stored.record;
    if (rec.state === "pending" || rec.audited) return stored;
    const last = rec.decisions.at(-1);
    const at = rec.decidedAt ?? rec.createdAt;
    const stores: Promise<boolean>[] = [];
    if (rec.state === "approved") {
      stores.push(this.audit(rec, "approved", last?.userId, `approved by ${approversOf(rec).join(", ")}; the command runs`, undefined, at));
    } else if (rec.state === "rejected") {
      const rejecter = rec.decisions.find((x) => x.decision === "reject");
      const reason = rejecter?.reason;
      const because = reason ? `: ${reason}` : "";
      stores.push(this.audit(rec, "rejected", rejecter?.userId, `rejected by ${rejecter?.userId ?? "an approver"}${because}`, reason, at));
      stores.push(this.d.auditor.rejected(rec.command.actor, rec.command.id, rec.verb, rec.vm, "IAAS_NOT_ALLOWED", `Rejected by approver ${rejecter?.userId ?? "an approver"}${because}; nothing was done.`, rec.command.vcenter));
    } else {
      stores.push(this.audit(rec, "expired", undefined, `nobody decided within ${rec.rule}'s time; rejected`, undefined, at));
      stores.push(this.d.auditor.rejected(rec.command.actor, rec.command.id, rec.verb, rec.vm, "IAAS_APPROVAL_DECIDED", "The request for approval expired before anyone decided it; nothing was done.", rec.command.vcenter));
    }
    if (!(await Promise.all(stores)).every(Boolean)) {
      log.warn({ approvalId: rec.id }, "the settled request's audit could not be stored; the sweep tries again");
      return stored;
    }
    return (await this.change(rec.id, (r) => (r.audited ? undefined : { ...r, audited: true }))) ?? stored;
  }

  private async updateCard(rec: ApprovalRecord, log: Logger, refusal?: IaasError): Promise<void> {
    if (!rec.card || !this.d.api) return;
    const card = cardMessage(rec, refusal);
    await this.d.api.update(rec.card.channel, rec.card.ts, card.text, card.blocks).catch((err: unknown) => log.warn({ reason: slackErrorOf(err) }, "the approval card could not be updated"));
  }

  /** A DM to the requester (chat.postMessage to the user id), else their request's response_url while Slack still takes it. */
  private async tellRequester(rec: ApprovalRecord, log: Logger, refusal?: IaasError): Promise<void> {
    const text = outcomeText(rec, refusal);
    if (this.d.api) {
      try {
        await this.d.api.postMessage(rec.requester, text);
        return;
      } catch (err) {
        log.info({ reason: slackErrorOf(err) }, "DM to the requester failed; trying the request's response_url");
      }
    }
    if (rec.responseUrl && this.d.now() - Date.parse(rec.createdAt) < RESPONSE_URL_TTL_MS) {
      const out = await postToResponseUrl(rec.responseUrl, { response_type: "ephemeral", replace_original: false, text });
      if (out.ok) return;
    }
    log.warn("the requester could not be told of the decision");
  }

  // ---- the sweep ------------------------------------------------------------------------------

  /** Starts the sweep on this replica: every sweepMs, over the whole bucket. */
  start(): void {
    const every = this.d.sweepMs ?? DEFAULT_SWEEP_MS;
    const tick = () => {
      if (this.stopped) return;
      this.sweeping = this.sweep()
        .catch((err: unknown) => this.d.log.warn({ err }, "approval sweep failed; trying again"))
        .finally(() => {
          this.sweeping = undefined;
          if (!this.stopped) this.timer = setTimeout(tick, every);
        });
    };
    this.timer = setTimeout(tick, every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping;
  }

  /**
   * One pass: pending requests past their expiry are expired, past half their time reminded;
   * settled ones a crashed replica did not audit are audited, approved ones it did not publish are
   * published, settled ones whose requester was not told are told. Each by compare-and-set (the
   * replica whose write lands acts) or under fixed ids (a repeat is dropped).
   */
  async sweep(): Promise<void> {
    const now = this.d.now();
    const log = this.d.log.child({ component: "approvals-sweep" });
    let pending = 0;
    let oldest = now;
    for (const found of await this.d.store.all()) {
      let cur = found;
      const rec = cur.record;
      if (rec.state === "pending" && now <= Date.parse(rec.expiresAt)) {
        pending += 1;
        oldest = Math.min(oldest, Date.parse(rec.createdAt));
      }
      if (rec.state === "pending") {
        if (!rec.card && this.d.api && now - Date.parse(rec.createdAt) > REPUBLISH_AFTER_MS) await this.postCard(rec.id, log);
        if (now > Date.parse(rec.expiresAt)) await this.expire(cur, log);
        else if (!rec.reminded && now >= Date.parse(rec.remindAt)) await this.remind(cur, log);
        continue;
      }
      if (now - Date.parse(rec.decidedAt ?? rec.createdAt) <= REPUBLISH_AFTER_MS) continue;
      // `told` comes after `audited`: a request told of was audited (records from before `audited` too).
      if (!rec.audited && !rec.told) {
        log.warn({ approvalId: rec.id, state: rec.state }, "a settled request was not marked audited; storing its audit (a repeat is dropped)");
        cur = await this.auditSettled(cur, log);
      }
      if (rec.state === "approved" && !rec.published) {
        log.warn({ approvalId: rec.id }, "an approved command was not marked published; publishing it (a repeat is dropped)");
        await this.runApproved(cur, log);
      } else if (!rec.told) {
        // Published (or refused) and not told: the replica died in between.
        await this.finish(cur, log, rec.refused && new IaasError(rec.refused.code, rec.refused.message, { retryable: rec.refused.retryable }));
      }
    }
    this.d.metrics?.approvalsPending.set(pending);
    this.d.metrics?.approvalOldestPendingSeconds.set(Math.max(0, (now - oldest) / 1000));
  }

  private async expire(cur: StoredApproval, log: Logger): Promise<void> {
    const next: ApprovalRecord = { ...cur.record, state: "expired", decidedAt: new Date(this.d.now()).toISOString() };
    const revision = await this.d.store.update(cur, next);
    if (revision === undefined) return;
    log.info({ approvalId: next.id }, "approval expired");
    await this.finish(await this.auditSettled({ record: next, revision }, log), log);
  }

  private async remind(cur: StoredApproval, log: Logger): Promise<void> {
    const next = { ...cur.record, reminded: true };
    const revision = await this.d.store.update(cur, next);
    if (revision === undefined) return;
    log.info({ approvalId: next.id }, "approval reminder");
    this.audit(next, "reminded", undefined, `reminded ${next.approvers}`);
    const channel = next.card?.channel;
    if (!this.d.api || !channel) return;
    const text = `:bell: Reminder for ${next.approvers}: <@${next.requester}>'s request (${next.summary}) still waits for a decision; it expires ${at(next.expiresAt)}. (request ${code(next.command.id)})`;
    await this.d.api.postMessage(channel, text).catch((err: unknown) => log.warn({ reason: slackErrorOf(err) }, "the approval reminder could not be posted"));
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** Re-reads and writes `f(record)` by compare-and-set until it lands (undefined from `f`: nothing to do, answers undefined). */
  private async change(id: string, f: (r: ApprovalRecord) => ApprovalRecord | undefined): Promise<StoredApproval | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.d.store.get(id).catch(() => undefined);
      if (!cur) return undefined;
      const next = f(cur.record);
      if (!next) return undefined;
      const revision = await this.d.store.update(cur, next).catch(() => undefined);
      if (revision !== undefined) return { record: next, revision };
    }
    return undefined;
  }

  private audit(rec: ApprovalRecord, decision: ApprovalAudit["decision"], by: string | undefined, message: string, reason?: string, at?: string): Promise<boolean> {
    return this.d.auditor.approval({
      kind: "approval",
      id: rec.id,
      request: rec.command.id,
      command: rec.verb,
      ...(rec.vm ? { vm: rec.vm } : {}),
      rule: rec.rule,
      decision,
      ...(by ? { by } : {}),
      ...(reason ? { reason } : {}),
      message: message.slice(0, 3000),
      at: at ?? new Date(this.d.now()).toISOString(),
    });
  }
}

function groupsOf(groups: Pick<GroupReader, "groupsOf">, userId: string): { groups?: string[] } {
  const g = groups.groupsOf(userId);
  return g?.length ? { groups: [...g] } : {};
}

/** The requester's ack: it waits, for whom, until when. */
export function ackMessage(rec: ApprovalRecord): SlackMessage {
  const text =
    rec.state === "pending"
      ? `:hourglass_flowing_sand: ${rec.summary}: this needs an approval (${rec.why}, rule ${code(rec.rule)}). It waits for ${rec.approvers}${rec.minApprovals > 1 ? ` (${rec.minApprovals} of them)` : ""} until ${at(rec.expiresAt)}; you will be told when it is decided. (request ${code(rec.command.id)})`
      : `This request was already ${rec.state}; nothing more was done. (request ${code(rec.command.id)})`;
  return { response_type: "ephemeral", text, blocks: [section(text)] };
}

/** The card: who asks what, the size, quota after, the rule; buttons while pending, who decided and when afterwards. */
export function cardMessage(rec: ApprovalRecord, refusal?: IaasError): { text: string; blocks: Block[] } {
  const head = `:raising_hand: <@${rec.requester}> asks for approval: ${rec.summary}`;
  const blocks: Block[] = [
    section(head),
    ...fields([
      ["Rule", `${code(rec.rule)}: ${rec.why}`],
      ["Approvers", `${rec.approvers}${rec.minApprovals > 1 ? ` (${rec.minApprovals} needed)` : ""}`],
      ...(rec.quotaAfter ? [["Quota after", rec.quotaAfter] as const] : []),
      ["Typed", code(`/iaas ${rec.text.slice(0, 200)}`)],
      [rec.state === "pending" ? "Expires" : "Asked", at(rec.state === "pending" ? rec.expiresAt : rec.createdAt)],
    ]),
  ];
  if (rec.state === "pending") {
    const yes = approversOf(rec);
    if (yes.length) blocks.push(context(`Approved so far by ${yes.map((u) => `<@${u}>`).join(", ")} (${yes.length} of ${rec.minApprovals}); ${rec.minApprovals - yes.length} more needed.`));
    blocks.push({ type: "actions", block_id: `approval-${rec.id}`, elements: [button(APPROVE_ACTION, "Approve", rec.id, "primary"), button(REJECT_ACTION, "Reject", rec.id, "danger")] });
  } else {
    blocks.push(section(decidedLine(rec, refusal)));
  }
  blocks.push(context(`Request ${code(rec.command.id)} · approval ${code(rec.id)}`));
  return { text: `${head} (${rec.state})`, blocks };
}

function decidedLine(rec: ApprovalRecord, refusal?: IaasError): string {
  const when = rec.decidedAt ? ` ${at(rec.decidedAt)}` : "";
  if (rec.state === "approved") {
    const by = approversOf(rec).map((u) => `<@${u}>`).join(", ");
    return refusal ? `:warning: Approved by ${by}${when}, but it cannot run: ${refusal.message}` : `:white_check_mark: Approved by ${by}${when}.`;
  }
  if (rec.state === "rejected") {
    const by = rec.decisions.filter((x) => x.decision === "reject").map((x) => `<@${x.userId}>`).join(", ");
    return `:no_entry_sign: Rejected by ${by}${when}.${reasonLine(rec)}`;
  }
  return `:hourglass: Expired${when}: nobody decided in time, so it was rejected.`;
}

function outcomeText(rec: ApprovalRecord, refusal?: IaasError): string {
  const id = rec.command.id;
  if (rec.state === "approved") {
    if (refusal) return errorText(refusal, id);
    return `:white_check_mark: Your request (${rec.summary}) was approved by ${approversOf(rec).map((u) => `<@${u}>`).join(", ")}; it runs now. (request ${code(id)})`;
  }
  if (rec.state === "rejected") return `:no_entry_sign: Your request (${rec.summary}) was rejected by ${rec.decisions.filter((x) => x.decision === "reject").map((x) => `<@${x.userId}>`).join(", ")}; nothing was done.${reasonLine(rec)}\n(request ${code(id)})`;
  return `:hourglass: Your request (${rec.summary}) expired: nobody decided it in time, so nothing was done. Ask again if you still need it. (request ${code(id)})`;
}

/** The rejecter's reason as a line of its own (it is user text: escaped, so it mentions and links nobody), or nothing. */
function reasonLine(rec: ApprovalRecord): string {
  const reason = rec.decisions.find((x) => x.decision === "reject" && x.reason)?.reason;
  return reason ? `\n*Reason:* ${escape(reason).replace(/\n+/g, " ")}` : "";
}

const plain = (text: string, max = 24) => ({ type: "plain_text" as const, text: text.length > max ? `${text.slice(0, max - 1)}…` : text });

/**
 * The Reject modal: what is asked, and an optional reason the requester is shown. It carries the
 * approval id only; who rejects is the submission's user, checked again on submission.
 */
export function rejectView(rec: ApprovalRecord): Record<string, unknown> {
  return {
    type: "modal",
    callback_id: REJECT_VIEW,
    private_metadata: rec.id,
    title: plain("Reject the request"),
    submit: plain("Reject"),
    close: plain("Cancel"),
    blocks: [
      section(`<@${rec.requester}> asks for approval: ${rec.summary}`),
      {
        type: "input",
        block_id: REASON_BLOCK,
        optional: true,
        label: plain("Reason", 2000),
        element: { type: "plain_text_input", action_id: REASON_ACTION, multiline: true, max_length: MAX_REASON, placeholder: plain("Why not, or what to ask for instead", 150) },
        hint: plain(`Shown to the requester, on the card and in the audit trail. At most ${MAX_REASON} characters.`, 2000),
      },
      context(`Request ${code(rec.command.id)} · approval ${code(rec.id)}`),
    ],
  };
}

/** A modal that replaces the Reject form, saying why nothing changed. */
function noticeView(text: string): Record<string, unknown> {
  return { type: "modal", title: plain("IaaS"), close: plain("Close"), blocks: [section(text)] };
}

/** Slack's error string or the client's code, never the error object (its request holds the token). */
function slackErrorOf(err: unknown): string {
  const e = err as { code?: unknown; data?: { error?: unknown } };
  return typeof e?.data?.error === "string" ? e.data.error : typeof e?.code === "string" ? e.code : "unknown error";
}
