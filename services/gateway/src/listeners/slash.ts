import { z } from "zod";
import { IaasError, ProxyEndpoints, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema, formatIssues, type Actor, type Command, type VmSummary } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { newTraceparent, requestJson, traceIdOf, type JetStreamClient, type Logger, type NatsConnection } from "@iaas/runtime";
import type { Auditor } from "../stores/audit.js";
import type { Block } from "../presentation/blocks.js";
import { confirmationPrompt, type ConfirmationStore } from "./confirm.js";
import { commandIdFor } from "../commands/ids.js";
import type { GatewayMetrics } from "../metrics.js";
import { code } from "../presentation/mrkdwn.js";
import { commandTooLong, parseCommand, type ParsedCommand } from "../commands/parse.js";
import type { ActionVerb, AnswerEnv, QueryVerb } from "../commands/verb.js";
import { acceptedText, authorizeParsed, grantsOf, isAction, labelOf, mayRun, questionText, recordOf, vmOf } from "../commands/verbs.js";
import type { RateLimiter } from "../stores/ratelimit.js";
import { ephemeral, errorText, parseErrorText, userFacingError } from "../presentation/render.js";
import type { Replier, SlackMessage } from "../transport/reply.js";
import type { RequestStore } from "../stores/requests.js";
import { withinBudget } from "./budget.js";
import { CommandPublisher } from "./publish.js";

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

/** How long the ack waits for the command to be stored and published (Slack gives us 3 s in all). */
export const ACK_BUDGET_MS = 2_000;
/** How long a query (list, info, templates, audit) may take before the ack says "looking" and the answer follows on the response_url. */
export const QUERY_BUDGET_MS = 2_000;
/** A query that outlives the ack still has this long to answer on the response_url. */
const QUERY_TIMEOUT_MS = 15_000;
/** The look-up before a delete's Confirm/Cancel (owner, protection by folder); on a timeout the service decides. */
const LOOKUP_TIMEOUT_MS = 1_200;
/**
 * Storing the reply target fails fast, so that with NATS away the ack itself can say so; a
 * publish gets longer, and if it outlasts the ack budget its failure is posted afterwards.
 */
const STORE_TIMEOUT_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

export interface SlashDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  requests: RequestStore;
  confirmations: ConfirmationStore;
  rate: RateLimiter;
  auditor: Auditor;
  replier: Replier;
  allowed: (url: string) => boolean;
  policy: Policy;
  /** The policy's Slack user groups the user is in (usergroups.ts): a map look-up, never a call. */
  groupsOf: (userId: string) => readonly string[] | undefined;
  log: Logger;
  metrics: GatewayMetrics;
  now: () => number;
}

export interface Ack {
  message: SlackMessage;
  verb: string;
  outcome: "accepted" | "duplicate" | "rejected" | "unavailable" | "answered" | "confirm" | "limited";
  code?: string;
}

/** One slash command being handled: the verified payload, its id and who asked. */
interface Call {
  p: SlashPayload;
  id: string;
  actor: Actor;
  meta: { retryNum?: number | undefined };
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
class RateLimitedError extends IaasError {
  constructor(readonly limit: number) {
    super("IAAS_RATE_LIMITED", `You have sent ${limit} commands in the last minute, the most the policy allows; nothing was done. Wait a minute and try again.`);
  }
}

/**
 * The `/iaas` listener, independent of the transport: Bolt's HTTP receiver and Socket Mode
 * both hand it the verified payload and an `ack`. It acks exactly once, within Slack's 3 s.
 *
 * Order for every command: payload → rate limit → grammar → role → the command's own checks →
 * answer (queries), Confirm/Cancel (policy `confirm`), or publish. Every refusal names the
 * problem and the request id, and is written to the audit trail. The rate limit's count is
 * started first and decides first, but is awaited only where something would happen: a command
 * to publish stores its reply target meanwhile.
 */
export class SlashCommands {
  /** Work still running after its ack (a slow NATS, a slow query); awaited on stop. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly publisher: CommandPublisher;

  constructor(private readonly d: SlashDeps) {
    this.publisher = new CommandPublisher({ js: d.js, requests: d.requests });
  }

  async handle(body: unknown, ack: (m: SlackMessage) => Promise<void>, meta: { retryNum?: number | undefined } = {}): Promise<void> {
    const started = performance.now();
    let result: Ack;
    try {
      result = await this.route(body, meta);
    } catch (err) {
      const ie = IaasError.from(err);
      this.d.log.error({ err }, "slash command failed");
      result = { message: ephemeral(errorText({ code: ie.code, message: userFacingError(ie.toJSON()) })), verb: "unknown", outcome: "rejected", code: ie.code };
    }
    await ack(result.message);
    this.d.metrics.ackSeconds.observe({ verb: result.verb }, (performance.now() - started) / 1000);
    this.d.metrics.commands.inc({ verb: result.verb, outcome: result.outcome, code: result.code ?? "" });
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.d.auditor.flush();
  }

  private async route(body: unknown, meta: { retryNum?: number | undefined }): Promise<Ack> {
    const parsed = SlashPayloadSchema.safeParse(body);
    if (!parsed.success) {
      const msg = `slash command payload rejected: ${formatIssues(parsed.error)}`;
      this.d.log.warn(msg);
      // Slack sent it; only the text is too long for the payload's bound. Say that, as the grammar would.
      if (parsed.error.issues.every((i) => i.code === "too_big" && i.path.length === 1 && i.path[0] === "text")) {
        const tooLong = commandTooLong([...(body as { text: string }).text].length);
        return { message: ephemeral(parseErrorText(tooLong)), verb: "unknown", outcome: "rejected", code: tooLong.code };
      }
      return { message: ephemeral(errorText(new IaasError("IAAS_BAD_REQUEST", "This request from Slack is not one the IaaS app understands."))), verb: "unknown", outcome: "rejected", code: "IAAS_BAD_REQUEST" };
    }
    const p = parsed.data;
    const id = commandIdFor(p.team_id, p.trigger_id);
    const traceparent = newTraceparent();
    // A Slack retry is the same request again, not one more.
    const admission = meta.retryNum ? undefined : this.d.rate.hit(p.user_id);
    // Awaited by admit() wherever the request does something; a path that throws before that
    // must not leave a failed count as an unhandled rejection.
    admission?.catch(() => undefined);
    const admit = async () => {
      const rate = await admission;
      if (rate && !rate.ok) throw new RateLimitedError(rate.limit);
    };
    // The request's logger is made on first use: most answers (help, sizes, …) log nothing.
    const parent = this.d.log;
    let log: Logger | undefined;
    const c: Call = {
      p,
      id,
      actor: actorOf(p, this.d.groupsOf(p.user_id)),
      meta,
      traceparent,
      admit,
      get log() {
        return (log ??= parent.child({ requestId: id, traceId: traceIdOf(traceparent), userId: p.user_id, ...(meta.retryNum ? { retryNum: meta.retryNum } : {}) }));
      },
    };
    try {
      return await this.dispatch(c);
    } catch (err) {
      if (!(err instanceof RateLimitedError)) throw err;
      c.log.info({ limit: err.limit }, "command refused: rate limit");
      return { message: ephemeral(errorText(err, id)), verb: "unknown", outcome: "limited", code: err.code };
    }
  }

  /**
   * Grammar → role → the command's own checks → answer, confirm or publish. Parsing and the
   * policy checks are local; the rate limit is awaited before any answer or effect (`admit`).
   */
  private async dispatch(c: Call): Promise<Ack> {
    const { id } = c;
    const cmd = parseCommand(c.p.text);
    if (!cmd.success) {
      await c.admit();
      // Never a word the user typed as a label: metric label values must stay a small set.
      const verb = cmd.error.verb ?? "unknown";
      c.log.info({ code: cmd.error.code }, `command rejected: ${cmd.error.message}`);
      this.d.auditor.rejected(c.actor, id, verb, undefined, cmd.error.code, cmd.error.message);
      return { message: ephemeral(parseErrorText(cmd.error, id)), verb, outcome: "rejected", code: cmd.error.code };
    }
    const label = labelOf(cmd.data);
    const record = recordOf(cmd.data);
    try {
      // Commands with an effect await the rate limit themselves (act), overlapping it with their own work.
      if (!isAction(record)) await c.admit();
      authorizeParsed(this.d.policy, c.actor, cmd.data);
      return isAction(record) ? await this.act(record, cmd.data, c) : await this.answer(record, cmd.data, c, label);
    } catch (err) {
      if (!(err instanceof IaasError) || err.code === "IAAS_INTERNAL" || err instanceof RateLimitedError) throw err;
      await c.admit();
      c.log.info({ code: err.code, verb: label }, `command refused: ${err.message}`);
      this.d.auditor.rejected(c.actor, id, label, vmOf(cmd.data), err.code, err.message);
      return { message: ephemeral(errorText(err, id)), verb: label, outcome: "rejected", code: err.code };
    }
  }

  /** A query: answered in the ack (local, or remote and quick), or on the response_url when slow. */
  private async answer(record: QueryVerb<ParsedCommand>, cmd: ParsedCommand, c: Call, label: string): Promise<Ack> {
    const { d } = this;
    const env: AnswerEnv = {
      policy: d.policy,
      actor: c.actor,
      id: c.id,
      mayRun: (verb) => mayRun(d.policy, c.actor, verb),
      ask: (ep, req) => requestJson(d.nc, ep, req, { timeoutMs: QUERY_TIMEOUT_MS, requestId: c.id, traceparent: c.traceparent }),
      audit: {
        latest: (q) => d.auditor.latest(q),
        succeeded: (verb, vm, message) => d.auditor.succeeded(c.actor, c.id, verb, vm, message),
      },
    };
    if (record.kind === "local") return { message: await record.answer(cmd, env), verb: label, outcome: "answered" };
    return this.query(c, label, () => record.answer(cmd, env));
  }

  /** A command that changes something: checked, then confirmed first or published now. */
  private async act(record: ActionVerb<ParsedCommand>, cmd: ParsedCommand, c: Call): Promise<Ack> {
    const { policy } = this.d;
    record.precheck(policy, cmd);
    let facts: Block[] = [];
    if (record.inspect) {
      await c.admit();
      facts = await record.inspect(cmd, { policy, actor: c.actor, lookup: (vm) => this.lookup(vm, c) });
    }
    const command = record.command(cmd, { id: c.id, actor: c.actor, issuedAt: new Date(this.d.now()).toISOString() });
    const label = labelOf(cmd);
    if (grantsOf(cmd).some((id) => policy.needsConfirmation(id))) {
      await c.admit();
      return this.askConfirmation(record, cmd, command, c, facts);
    }
    return this.submit(command, c, acceptedText(record, cmd, c.id), label);
  }

  /**
   * The VM a command names, looked up before the buttons are shown. If vCenter is slow or the
   * proxy is away, undefined: the buttons are shown anyway and the command service checks.
   */
  private async lookup(vm: string, c: Call): Promise<VmSummary | undefined> {
    try {
      return (await requestJson(this.d.nc, ProxyEndpoints.vmGet, { vm }, { timeoutMs: LOOKUP_TIMEOUT_MS, requestId: c.id, traceparent: c.traceparent })).vm;
    } catch (err) {
      if (err instanceof IaasError && (err.code === "IAAS_TIMEOUT" || err.code === "IAAS_UNAVAILABLE" || err.code === "IAAS_VCENTER_UNAVAILABLE")) {
        c.log.warn({ code: err.code }, "VM look-up before confirmation failed; the command service will check");
        return undefined;
      }
      throw err;
    }
  }

  /**
   * Stores the checked command as a pending confirmation (any replica can take the click) and
   * answers with Confirm / Cancel. A Slack retry of the same request shows the same prompt.
   */
  private async askConfirmation(record: ActionVerb<ParsedCommand>, cmd: ParsedCommand, command: Command, c: Call, facts: Block[]): Promise<Ack> {
    const label = labelOf(cmd);
    if (!this.d.allowed(c.p.response_url)) return this.foreignResponseUrl(c, label);
    const ttl = this.d.policy.confirmTtlSeconds;
    const now = this.d.now();
    const vm = vmOf(cmd);
    const rec = {
      id: c.id,
      command,
      verb: label,
      question: questionText(record, cmd, c.p.text),
      accepted: acceptedText(record, cmd, c.id),
      ...(vm ? { vm } : {}),
      userId: c.p.user_id,
      teamId: c.p.team_id,
      channelId: c.p.channel_id,
      text: c.p.text.slice(0, 4000),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttl * 1000).toISOString(),
      state: "pending" as const,
    };
    try {
      const created = await this.d.confirmations.create(rec, STORE_TIMEOUT_MS);
      c.log.info({ created }, created ? "asked for confirmation" : "confirmation asked again (Slack retry)");
      if (!created) {
        // A Slack retry of a request whose buttons were already answered: say so, no new buttons.
        const prior = await this.d.confirmations.get(c.id);
        if (prior && prior.record.state !== "pending") {
          return { message: ephemeral(`This request was already ${prior.record.state}; nothing more was done. (request ${code(c.id)})`), verb: label, outcome: "duplicate" };
        }
      }
    } catch (err) {
      c.log.error({ err }, "could not store the confirmation");
      return { message: ephemeral(errorText(unavailable(), c.id)), verb: label, outcome: "unavailable", code: "IAAS_UNAVAILABLE" };
    }
    return { message: confirmationPrompt(rec, facts, ttl), verb: label, outcome: "confirm" };
  }

  private foreignResponseUrl(c: Call, verb: string): Ack {
    // Slack's response URLs are always on Slack's host; anything else is a misconfiguration
    // (SLACK_API_URL) or a crafted request. Refuse before anything is published.
    c.log.warn("command refused: its response_url is not on Slack's host");
    return { message: ephemeral(errorText(new IaasError("IAAS_BAD_REQUEST", "This request cannot be answered: its response URL is not Slack's."))), verb, outcome: "rejected", code: "IAAS_BAD_REQUEST" };
  }

  /** Work that outlives its ack: kept until it settles, and awaited on stop. */
  private track(later: Promise<unknown>): void {
    this.pending.add(later);
    void later.finally(() => this.pending.delete(later));
  }

  /**
   * Answers a query in the ack when it is quick (the usual case); otherwise acks with "looking"
   * and posts the answer to the response_url when it comes.
   */
  private async query(c: Call, verb: string, fn: () => Promise<SlackMessage>): Promise<Ack> {
    const failure = (err: unknown): Ack => {
      const ie = IaasError.from(err);
      if (ie.code === "IAAS_INTERNAL") c.log.error({ err }, `${verb} failed`);
      else c.log.info({ code: ie.code }, `${verb} failed: ${ie.message}`);
      return { message: ephemeral(errorText({ code: ie.code, message: userFacingError(ie.toJSON()) }, c.id)), verb, outcome: ie.code === "IAAS_UNAVAILABLE" || ie.code === "IAAS_TIMEOUT" ? "unavailable" : "rejected", code: ie.code };
    };
    const work = fn();
    const first = await withinBudget(work, QUERY_BUDGET_MS);
    if (first.kind === "done") return { message: first.value, verb, outcome: "answered" };
    if (first.kind === "failed") return failure(first.err);
    c.log.info("query slower than the ack budget; answering on the response_url");
    this.track(
      work.then(
        (m) => this.d.replier.direct(c.p.response_url, { ...m, replace_original: false }, c.id),
        (err: unknown) => this.d.replier.direct(c.p.response_url, { ...failure(err).message, replace_original: false }, c.id),
      ),
    );
    return { message: ephemeral(`:mag: Looking that up… (request ${code(c.id)})`), verb, outcome: "answered" };
  }

  /**
   * Stores where to answer, then publishes the command with `Nats-Msg-Id` = id. The ack waits
   * up to ACK_BUDGET_MS for both: then it can say truthfully that the command is queued, or
   * that it is not. If NATS is slower than that, the ack says the command is on its way and a
   * later failure is posted to the response_url.
   */
  private async submit(command: Command, c: Call, acceptedLine: string, verb: string): Promise<Ack> {
    const { p, id } = c;
    const log = () => c.log.child({ verb });
    if (!this.d.allowed(p.response_url)) {
      await c.admit();
      return this.foreignResponseUrl(c, verb);
    }

    // The reply target is written while the rate limit is counted (two round trips at once); the
    // command is published only once both are done: within the limit, and its answer has
    // somewhere to go. A refused command leaves an unused record, which the bucket's TTL removes.
    const stored = this.publisher.remember(
      { id, responseUrl: p.response_url, teamId: p.team_id, channelId: p.channel_id, userId: p.user_id, text: p.text, createdAt: new Date().toISOString() },
      { posts: 0, timeoutMs: STORE_TIMEOUT_MS },
    );
    await c.admit();
    const work = this.publisher.publish(command, stored, { traceparent: c.traceparent, timeoutMs: PUBLISH_TIMEOUT_MS });
    const first = await withinBudget(work, ACK_BUDGET_MS);
    if (first.kind === "done") {
      const { duplicate } = first.value;
      c.log.info({ verb, duplicate }, duplicate ? "command repeated; JetStream dropped the copy" : "command published");
      return { message: ephemeral(acceptedLine), verb, outcome: duplicate ? "duplicate" : "accepted" };
    }
    if (first.kind === "failed") {
      log().error({ err: first.err }, "could not publish the command");
      return { message: ephemeral(errorText(unavailable(), id)), verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" };
    }
    log().warn({ budgetMs: ACK_BUDGET_MS }, "publishing is slow; acked before JetStream confirmed");
    this.track(
      work.then(
        () => log().info("command published after the ack"),
        async (err: unknown) => {
          log().error({ err }, "could not publish the command");
          this.d.metrics.commands.inc({ verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" });
          await this.d.replier.direct(p.response_url, ephemeral(errorText(unavailable(), id)), id);
        },
      ),
    );
    return { message: ephemeral(acceptedLine), verb, outcome: "accepted" };
  }
}

function unavailable(): IaasError {
  return new IaasError("IAAS_UNAVAILABLE", "The IaaS service cannot take commands right now; nothing was done. Try again in a minute.");
}

function actorOf(p: SlashPayload, groups: readonly string[] | undefined): Actor {
  return { userId: p.user_id, teamId: p.team_id, channelId: p.channel_id, ...(groups?.length ? { groups: [...groups] } : {}), via: "slack" };
}
