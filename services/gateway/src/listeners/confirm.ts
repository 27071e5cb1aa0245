import { z } from "zod";
import { CommandIdSchema, CommandSchema, IaasError, IsoTimeSchema, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, formatIssues, type Command } from "@iaas/contracts";
import { newTraceparent, readKvJson, type JetStreamClient, type KV, type Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { Auditor } from "../stores/audit.js";
import { button, context, section, type Block } from "../presentation/blocks.js";
import type { GatewayMetrics } from "../metrics.js";
import { code } from "../presentation/mrkdwn.js";
import { errorText } from "../presentation/render.js";
import { postToResponseUrl, type SlackMessage } from "../transport/reply.js";
import type { QuotaGate } from "../stores/quotas.js";
import type { RequestStore } from "../stores/requests.js";
import { CommandPublisher } from "./publish.js";
import type { GroupReader } from "./call.js";
import { MAX_ACTOR_GROUPS } from "../stores/usergroups.js";

/** Action ids of the two buttons; the button value is the command id. */
export const CONFIRM_ACTION = "iaas.confirm";
export const CANCEL_ACTION = "iaas.cancel";

/**
 * A command waiting for its requester's click, in the `iaas_confirmations` bucket by command id.
 * The command is stored whole, already checked against the policy, and is published as it is
 * when confirmed, so the click cannot change what runs. `state` moves once, from `pending`, by
 * compare-and-set: two clicks (or two replicas) cannot both confirm.
 */
export const ConfirmationSchema = z.strictObject({
  id: CommandIdSchema,
  command: CommandSchema,
  /** `vm.delete`, `power.off`: the metric and audit label. */
  verb: z.string().max(40),
  /** What the buttons ask, mrkdwn (`Delete \`web-01\`?`). */
  question: z.string().max(3000),
  /** The line that replaces the buttons once confirmed (`Deleting \`web-01\`… (request …)`). */
  accepted: z.string().max(3000),
  /** The VM the command names, for the audit record. */
  vm: z.string().max(255).optional(),
  userId: SlackUserIdSchema,
  teamId: SlackTeamIdSchema,
  channelId: SlackChannelIdSchema,
  text: z.string().max(4000),
  createdAt: IsoTimeSchema,
  expiresAt: IsoTimeSchema,
  state: z.enum(["pending", "confirmed", "cancelled", "expired"]),
});
export type Confirmation = z.infer<typeof ConfirmationSchema>;

export class ConfirmationStore {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** Stores a new pending confirmation; `false` when it exists already (a Slack retry of the same request). */
  async create(rec: Confirmation, timeoutMs: number): Promise<boolean> {
    try {
      await this.kv.put(rec.id, JSON.stringify(ConfirmationSchema.parse(rec)), { previousSeq: 0, timeout: timeoutMs });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  async get(id: string): Promise<{ record: Confirmation; revision: number } | undefined> {
    const r = await readKvJson(this.kv, id, ConfirmationSchema, this.log, "confirmation record");
    return r && { record: r.value, revision: r.revision };
  }

  /** Moves a pending confirmation to `state`; `false` if someone else moved it first. */
  async settle(cur: { record: Confirmation; revision: number }, state: Exclude<Confirmation["state"], "pending">): Promise<boolean> {
    if (cur.record.state !== "pending") return false;
    try {
      await this.kv.update(cur.record.id, JSON.stringify({ ...cur.record, state }), cur.revision);
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/** The ephemeral prompt: the question, facts, who may answer and until when, and the two buttons. */
export function confirmationPrompt(rec: Confirmation, facts: Block[], ttlSeconds: number): SlackMessage {
  const minutes = ttlSeconds % 60 === 0 ? `${ttlSeconds / 60} minute${ttlSeconds === 60 ? "" : "s"}` : `${ttlSeconds} seconds`;
  const blocks: Block[] = [
    section(`:warning: ${rec.question}`),
    ...facts,
    { type: "actions", block_id: `confirm-${rec.id}`, elements: [button(CONFIRM_ACTION, "Confirm", rec.id, "danger"), button(CANCEL_ACTION, "Cancel", rec.id)] },
    context(`Only <@${rec.userId}> can confirm. Expires in ${minutes}. (request ${code(rec.id)})`),
  ];
  return { response_type: "ephemeral", text: `${rec.question} Confirm or cancel within ${minutes}. (request ${code(rec.id)})`, blocks };
}

/** The fields of Slack's `block_actions` payload the gateway uses; only ever from a verified request. */
export const BlockActionsSchema = z.object({
  type: z.literal("block_actions"),
  user: z.object({ id: SlackUserIdSchema }),
  team: z.object({ id: SlackTeamIdSchema }).nullish(),
  response_url: z.string().min(1).optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).min(1),
});

export interface ClickDeps {
  store: ConfirmationStore;
  /** Reserves the quota share of a confirmed create, clone or deploy before it is published. */
  quotas: QuotaGate;
  requests: RequestStore;
  js: JetStreamClient;
  auditor: Auditor;
  allowed: (url: string) => boolean;
  log: Logger;
  metrics: GatewayMetrics;
  now: () => number;
  /**
   * Set when group membership is read (a bot token): the clicker's groups now (usergroups.ts). A
   * confirmed command carries them instead of those read when it was typed (the policy's groups,
   * and the VM's team if the clicker is still in it), so a user taken out of a group meanwhile
   * cannot confirm what only the group allowed (the service re-checks).
   */
  groups?: Pick<GroupReader, "groupsOf" | "isMember">;
}

const replace = (text: string): SlackMessage => ({ response_type: "ephemeral", replace_original: true, text, blocks: [section(text)] });
const aside = (text: string): SlackMessage => ({ response_type: "ephemeral", replace_original: false, text });

/**
 * A Confirm or Cancel click (`block_actions`, verified like every request on the endpoint).
 * Only the requester's click counts; anyone else is told so and nothing changes. A click after
 * the confirmation expired, was confirmed or cancelled does nothing more than say so (an
 * expired one) or nothing at all (consumed: the buttons were already replaced).
 */
export async function handleClick(d: ClickDeps, body: unknown): Promise<void> {
  const parsed = BlockActionsSchema.safeParse(body);
  if (!parsed.success) {
    d.log.warn(`block_actions payload rejected: ${formatIssues(parsed.error)}`);
    return;
  }
  const p = parsed.data;
  const action = p.actions.find((a) => a.action_id === CONFIRM_ACTION || a.action_id === CANCEL_ACTION);
  if (!action) return;
  const responseUrl = p.response_url;
  if (!responseUrl || !d.allowed(responseUrl)) {
    d.log.warn("click ignored: its response_url is missing or not on Slack's host");
    return;
  }
  const say = async (m: SlackMessage) => {
    const out = await postToResponseUrl(responseUrl, m);
    if (!out.ok) d.log.warn({ detail: out.detail }, "response_url post failed");
  };
  const id = CommandIdSchema.safeParse(action.value);
  const cur = id.success ? await d.store.get(id.data) : undefined;
  const log = d.log.child({ requestId: id.success ? id.data : undefined, clicker: p.user.id });
  const count = (outcome: string) => d.metrics.confirmations.inc({ outcome });
  if (!cur) {
    log.info("click on an unknown or long-expired confirmation");
    count("unknown");
    await say(aside(":hourglass: This confirmation is no longer valid; nothing was done. Run the command again."));
    return;
  }
  const rec = cur.record;
  if (p.user.id !== rec.userId || (p.team?.id !== undefined && p.team.id !== rec.teamId)) {
    log.warn({ requester: rec.userId }, "click by someone other than the requester; ignored");
    count("not_requester");
    await say(aside(`:no_entry: Only <@${rec.userId}> can confirm or cancel this. Nothing was done. (request ${code(rec.id)})`));
    return;
  }
  if (rec.state !== "pending") {
    log.info({ state: rec.state }, "click on a confirmation already answered; nothing to do");
    count("consumed");
    return;
  }
  const actor = rec.command.actor;
  if (d.now() > Date.parse(rec.expiresAt)) {
    if (!(await d.store.settle(cur, "expired"))) return;
    count("expired");
    const message = "This confirmation has expired; nothing was done. Run the command again.";
    d.auditor.rejected(actor, rec.id, rec.verb, rec.vm, "IAAS_CONFIRMATION_EXPIRED", message, rec.command.vcenter);
    await say(replace(`:hourglass: ${message} (request ${code(rec.id)})`));
    return;
  }
  if (action.action_id === CANCEL_ACTION) {
    if (!(await d.store.settle(cur, "cancelled"))) return;
    count("cancelled");
    d.auditor.rejected(actor, rec.id, rec.verb, rec.vm, undefined, "Cancelled by the requester; nothing was done.", rec.command.vcenter);
    await say(replace(`:no_entry_sign: Cancelled; nothing was done. (request ${code(rec.id)})`));
    return;
  }
  if (!(await d.store.settle(cur, "confirmed"))) return;
  count("confirmed");
  // The quota share is taken now, not when the buttons were shown: what exists may have changed.
  // It depends on the owner, the team and the size, never on the actor's groups.
  let hold;
  try {
    hold = await d.quotas.reserve(rec.command, newTraceparent());
  } catch (err) {
    const ie = IaasError.from(err);
    log.info({ code: ie.code }, `confirmed command refused: ${ie.message}`);
    d.auditor.rejected(actor, rec.id, rec.verb, rec.vm, ie.code, ie.message, rec.command.vcenter);
    await say(replace(errorText(ie, rec.id)));
    return;
  }
  log.info("confirmed; publishing the command");
  await say(replace(rec.accepted));
  try {
    await publishConfirmed(d, rec, d.groups ? withGroups(rec.command, groupsNow(d.groups, rec.userId, rec.command.actor.groups)) : rec.command, responseUrl);
  } catch (err) {
    log.error({ err }, "could not publish a confirmed command");
    await d.quotas.release(hold);
    await say(aside(errorText({ code: "IAAS_UNAVAILABLE", message: "The IaaS service cannot take commands right now; nothing was done. Run the command again in a minute." }, rec.id)));
  }
}

/** The policy's groups the user is in now, and those the command carried that the user is still in (the VM's team). */
function groupsNow(groups: Pick<GroupReader, "groupsOf" | "isMember">, userId: string, carried: readonly string[] | undefined): string[] {
  const named = groups.groupsOf(userId) ?? [];
  return [...named, ...(carried ?? []).filter((g) => !named.includes(g) && groups.isMember(userId, g))].slice(0, MAX_ACTOR_GROUPS);
}

/** The command as stored, its actor's groups replaced (left out when none). */
function withGroups(command: Command, groups: readonly string[] | undefined): Command {
  const { groups: _old, ...actor } = command.actor;
  return { ...command, actor: { ...actor, ...(groups?.length ? { groups: [...groups] } : {}) } };
}

/**
 * Results of a confirmed command go to the click's response_url (a fresh one: Slack allows five
 * posts in 30 minutes; the replaced prompt used one).
 */
async function publishConfirmed(d: ClickDeps, rec: Confirmation, command: Command, responseUrl: string): Promise<void> {
  const publisher = new CommandPublisher({ js: d.js, requests: d.requests });
  const stored = publisher.remember(
    // Slack's clock, not the policy's: createdAt dates the response_url's 30-minute life.
    { id: rec.id, responseUrl, teamId: rec.teamId, channelId: rec.channelId, userId: rec.userId, text: rec.text, createdAt: new Date().toISOString() },
    { posts: 1, timeoutMs: 5_000 },
  );
  // The click is a request of its own: a new trace, carried with the command like any other.
  await publisher.publish(command, stored, { traceparent: newTraceparent(), timeoutMs: 5_000 });
}
