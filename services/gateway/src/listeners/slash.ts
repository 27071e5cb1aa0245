import { IaasError, ServiceNames, formatIssues, type Actor } from "@iaas/contracts";
import { SpanKind, otelContext, startHop, traceIdOf, type Logger } from "@iaas/runtime";
import { commandIdFor } from "../commands/ids.js";
import { commandTooLong, parseCommand, takesVcenter } from "../commands/parse.js";
import { authorizeParsed, isAction, labelOf, recordOf, vmOf } from "../commands/verbs.js";
import { ephemeral, errorText, parseErrorText, userFacingError } from "../presentation/render.js";
import type { SlackMessage } from "../transport/reply.js";
import { Actions } from "./action.js";
import { Pending, RateLimitedError, SlashPayloadSchema, type Ack, type Call, type CallMeta, type CommandPayload, type SlashDeps } from "./call.js";
import { Queries } from "./query.js";

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
  private readonly pending = new Pending();
  private readonly queries: Queries;
  private readonly actions: Actions;

  constructor(private readonly d: SlashDeps) {
    this.queries = new Queries(d, this.pending);
    this.actions = new Actions(d, this.pending);
  }

  async handle(body: unknown, ack: (m: SlackMessage) => Promise<void>, meta: { retryNum?: number | undefined } = {}): Promise<void> {
    await this.answer(() => this.route(body, meta), (r) => ack(r.message));
  }

  /**
   * A command a modal or an App Home click built from a verified interaction: the same path as a
   * typed one (grammar, role, scope, the verb's checks, confirmation, quota, publish). `ack` gets
   * the answer with how it ended, for the caller to show (a modal's field error, a DM).
   */
  async run(p: CommandPayload, ack: (r: Ack) => Promise<void>, meta: CallMeta = {}): Promise<void> {
    await this.answer(() => this.call(p, meta), ack);
  }

  private async answer(work: () => Promise<Ack>, ack: (r: Ack) => Promise<void>): Promise<void> {
    const started = performance.now();
    let result: Ack;
    try {
      result = await work();
    } catch (err) {
      const ie = IaasError.from(err);
      this.d.log.error({ err }, "slash command failed");
      result = { message: ephemeral(errorText({ code: ie.code, message: userFacingError(ie.toJSON()) })), verb: "unknown", outcome: "rejected", code: ie.code };
    }
    await ack(result);
    this.d.metrics.ackSeconds.observe({ verb: result.verb }, (performance.now() - started) / 1000);
    this.d.metrics.commands.inc({ verb: result.verb, outcome: result.outcome, code: result.code ?? "" });
  }

  async stop(): Promise<void> {
    await this.pending.settled();
    await this.d.auditor.flush();
  }

  private async route(body: unknown, meta: CallMeta): Promise<Ack> {
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
    return this.call(parsed.data, meta);
  }

  private async call(p: CommandPayload, meta: CallMeta): Promise<Ack> {
    const id = commandIdFor(p.team_id, p.trigger_id);
    // The request's server span: the root of its trace (publish, the command service, vCenter).
    const hop = startHop(ServiceNames.gateway, "slack.command", SpanKind.SERVER, { "iaas.request.id": id, ...(meta.retryNum ? { "slack.retry_num": meta.retryNum } : {}) }, "");
    const traceparent = hop.traceparent;
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
      actor: actorOf(p, this.d.groups.groupsOf(p.user_id)),
      meta,
      traceparent,
      admit,
      get log() {
        return (log ??= parent.child({ requestId: id, traceId: traceIdOf(traceparent), userId: p.user_id, ...(meta.retryNum ? { retryNum: meta.retryNum } : {}) }));
      },
    };
    try {
      const ack = await otelContext.with(hop.ctx, () => this.dispatch(c));
      hop.span.setAttributes({ "iaas.verb": ack.verb, "iaas.outcome": ack.outcome, ...(ack.code ? { "iaas.code": ack.code } : {}) });
      return ack;
    } catch (err) {
      if (!(err instanceof RateLimitedError)) {
        hop.fail(err);
        throw err;
      }
      c.log.info({ limit: err.limit }, "command refused: rate limit");
      return { message: ephemeral(errorText(err, id)), verb: "unknown", outcome: "limited", code: err.code };
    } finally {
      hop.end();
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
      return { message: ephemeral(parseErrorText(cmd.error, id)), verb, outcome: "rejected", code: cmd.error.code, refusal: cmd.error.message };
    }
    const label = labelOf(cmd.data);
    const record = recordOf(cmd.data);
    try {
      // Commands with an effect await the rate limit themselves (act), overlapping it with their own work.
      if (!isAction(record)) await c.admit();
      // The verbs about VMs; `remediation pause|resume vc=` names the vCenter of its own pause.
      if (takesVcenter(cmd.data.verb) || cmd.data.verb === "remediation") checkVcenter(this.d.vcenters, cmd.data.vcenter);
      authorizeParsed(this.d.policy, c.actor, cmd.data);
      return isAction(record) ? await this.actions.act(record, cmd.data, c) : await this.queries.answer(record, cmd.data, c, label);
    } catch (err) {
      if (!(err instanceof IaasError) || err.code === "IAAS_INTERNAL" || err instanceof RateLimitedError) throw err;
      await c.admit();
      c.log.info({ code: err.code, verb: label }, `command refused: ${err.message}`);
      this.d.auditor.rejected(c.actor, id, label, vmOf(cmd.data), err.code, err.message, cmd.data.vcenter);
      return { message: ephemeral(errorText(err, id)), verb: label, outcome: "rejected", code: err.code, refusal: err.message };
    }
  }
}

/** `vc=` names a vCenter the gateway knows (`default` or an id of VCENTERS), or the command is refused before anything is asked or published. */
export function checkVcenter(known: readonly string[], vcenter: string | undefined): void {
  if (vcenter === undefined || known.includes(vcenter)) return;
  const ids = known.map((id) => `\`${id}\``).join(", ");
  throw new IaasError("IAAS_UNKNOWN_VCENTER", `There is no vCenter \`${vcenter}\`; nothing was done. ${known.length === 1 ? `Only the default vCenter is configured (${ids}): leave \`vc=\` out.` : `The vCenters are ${ids}; leave \`vc=\` out for \`default\`.`}`);
}

function actorOf(p: CommandPayload, groups: readonly string[] | undefined): Actor {
  return { userId: p.user_id, teamId: p.team_id, channelId: p.channel_id, ...(groups?.length ? { groups: [...groups] } : {}), via: "slack" };
}
