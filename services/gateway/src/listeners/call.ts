import { IaasError, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, type Actor } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import type { JetStreamClient, Logger, NatsConnection } from "@iaas/runtime";
import type { PauseStore } from "../stores/pause.js";
import { z } from "zod";
import type { GatewayMetrics } from "../metrics.js";
import { ephemeral, errorText } from "../presentation/render.js";
import type { Auditor } from "../stores/audit.js";
import { MAX_ACTOR_GROUPS } from "../stores/usergroups.js";
import type { RateLimiter } from "../stores/ratelimit.js";
import type { RequestStore } from "../stores/requests.js";
import type { Replier, SlackMessage } from "../transport/reply.js";
import type { ConfirmationStore } from "./confirm.js";
import type { QuotaGate } from "../stores/quotas.js";
import type { ApprovalDesk } from "./approvals.js";

/**
 * The fields of Slack's slash command payload the gateway uses. Not strict: Slack adds fields
 * over time. It reaches us only after Bolt verified the signature (HTTP) or over the
 * authenticated Socket Mode connection, so identity comes from here and nowhere else.
 * https://api.slack.com/interactivity/slash-commands#app_command_handling
 */
export const SlashPayloadSchema = z.object({
  team_id: SlackTeamIdSchema,
  user_id: SlackUserIdSchema,
  channel_id: SlackChannelIdSchema,
  command: z.string().min(1),
  // Bounded, but far above what a command may be: an over-long command gets its own message (parse.ts).
  text: z.string().max(40_000),
  response_url: z.string().min(1),
  trigger_id: z.string().min(1).max(255),
});
export type SlashPayload = z.infer<typeof SlashPayloadSchema>;

/**
 * A command to run as if typed: a verified slash command, or one a modal submission or an App
 * Home click built from a verified interaction (identity from the interaction, never from a
 * form field). Without a response_url (the App Home has none) its answers go to the user's DM
 * with the app (chat.postMessage to the user id).
 */
export type CommandPayload = Omit<SlashPayload, "response_url"> & { response_url?: string | undefined };

/** How a command's request stands besides the payload: a Slack retry, or a response_url already used. */
export interface CallMeta {
  retryNum?: number | undefined;
  /** Posts already made (or about to be) on the response_url, so results do not overspend Slack's five. */
  responsePosts?: number | undefined;
  /** When Slack issued the response_url (ms), when earlier than now: a modal's is its slash command's. */
  responseUrlSince?: number | undefined;
}

/** How long the ack waits for the command to be stored and published (Slack gives us 3 s in all). */
export const ACK_BUDGET_MS = 2_000;
/** How long a query (list, info, templates, audit) may take before the ack says "looking" and the answer follows on the response_url. */
export const QUERY_BUDGET_MS = 2_000;
/** A query that outlives the ack still has this long to answer on the response_url. */
export const QUERY_TIMEOUT_MS = 15_000;
/**
 * The look-up of the VM an action names, at the door (not found, ambiguous, protected by folder,
 * whose it is); on a timeout the service decides. What it takes comes off the publish's share of
 * ACK_BUDGET_MS, down to MIN_PUBLISH_BUDGET_MS (a slower publish is acked as on its way).
 */
export const LOOKUP_TIMEOUT_MS = 1_200;
/** Long enough for a failing store (STORE_TIMEOUT_MS) to be said in the ack: NATS away is then "nothing was done", not "on its way". */
export const MIN_PUBLISH_BUDGET_MS = 1_200;
/**
 * Storing the reply target fails fast, so that with NATS away the ack itself can say so; a
 * publish gets longer, and if it outlasts the ack budget its failure is posted afterwards.
 */
export const STORE_TIMEOUT_MS = 1_000;
export const PUBLISH_TIMEOUT_MS = 5_000;

/** What the listeners ask about Slack user groups (stores/usergroups.ts). */
export interface GroupReader {
  /** The policy's groups the user is in; undefined when none or not known yet. */
  groupsOf(userId: string): readonly string[] | undefined;
  /** Whether the user is in this group (any group); false while not known. */
  isMember(userId: string, groupId: string): boolean;
  /** Every group the user is in, the policy's first, at most `max`. */
  allGroupsOf(userId: string, max: number): string[];
}

export interface SlashDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  requests: RequestStore;
  confirmations: ConfirmationStore;
  rate: RateLimiter;
  /** Reserves the quota share of create, clone and deploy before they are published. */
  quotas: QuotaGate;
  auditor: Auditor;
  /** The pause of automatic remediation (the `iaas_remediation_control` bucket). */
  pause: PauseStore;
  replier: Replier;
  allowed: (url: string) => boolean;
  policy: Policy;
  /** Slack user group membership as last read (usergroups.ts): map look-ups, never a call. */
  groups: GroupReader;
  log: Logger;
  metrics: GatewayMetrics;
  now: () => number;
  /** Requests that wait for an approver (policy `approvals`). */
  approvals: ApprovalDesk;
  /** Every vCenter id `vc=` may name: `default` first, then VCENTERS. One: the default only (`vc=` is then of no use). */
  vcenters: readonly string[];
}

export interface Ack {
  message: SlackMessage;
  verb: string;
  outcome: "accepted" | "duplicate" | "rejected" | "unavailable" | "answered" | "confirm" | "limited" | "approval";
  code?: string;
  /** A refusal's own message (without the request id): a modal shows it on the field it is about. */
  refusal?: string;
}

/** One slash command being handled: the verified payload, its id and who asked. */
export interface Call {
  p: CommandPayload;
  id: string;
  actor: Actor;
  meta: CallMeta;
  log: Logger;
  /** W3C trace context started for this Slack request; travels with the command on NATS. */
  traceparent: string;
  /**
   * Resolves when the user is within the rate limit, throws RateLimitedError when not. The count
   * is started as the request arrives; whatever has an effect (a query, an audit record, a
   * publish) awaits this first, so a refused request does nothing, but a command's own round
   * trips (storing its reply target) need not wait for the count's.
   */
  admit: () => Promise<void>;
}

/** A request over the user's rate limit: answered as such, never audited (it did nothing). */
export class RateLimitedError extends IaasError {
  constructor(readonly limit: number) {
    super("IAAS_RATE_LIMITED", `You have sent ${limit} commands in the last minute, the most the policy allows; nothing was done. Wait a minute and try again.`);
  }
}

/** Work that outlives its ack (a slow NATS, a slow query): kept until it settles, awaited on stop. */
export class Pending {
  private readonly work = new Set<Promise<unknown>>();

  track(later: Promise<unknown>): void {
    this.work.add(later);
    void later.finally(() => this.work.delete(later));
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.work]);
  }
}

/**
 * The actor as the policy should see it on a VM of team `team`: with that user group added when
 * the actor is in it (the actor carries only the policy's groups otherwise), so the gateway's
 * check and the command service's (which reads the command's actor) agree.
 */
export function actorOn(groups: GroupReader, actor: Actor, team: string | undefined): Actor {
  if (team === undefined || !/^S[A-Z0-9]{2,20}$/.test(team) || actor.groups?.includes(team)) return actor;
  if (!groups.isMember(actor.userId, team)) return actor;
  return { ...actor, groups: [...(actor.groups ?? []), team].slice(-MAX_ACTOR_GROUPS) };
}

export function unavailable(): IaasError {
  return new IaasError("IAAS_UNAVAILABLE", "The IaaS service cannot take commands right now; nothing was done. Try again in a minute.");
}

/** Whether the call's answers can go somewhere: its response_url is Slack's, or it has none (a DM). */
export function replyable(d: { allowed: (url: string) => boolean }, c: Call): boolean {
  return c.p.response_url === undefined || d.allowed(c.p.response_url);
}

export function foreignResponseUrl(c: Call, verb: string): Ack {
    // Slack's response URLs are always on Slack's host; anything else is a misconfiguration
    // (SLACK_API_URL) or a crafted request. Refuse before anything is published.
    c.log.warn("command refused: its response_url is not on Slack's host");
    return { message: ephemeral(errorText(new IaasError("IAAS_BAD_REQUEST", "This request cannot be answered: its response URL is not Slack's."))), verb, outcome: "rejected", code: "IAAS_BAD_REQUEST" };
  }

