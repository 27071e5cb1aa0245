import { IaasError } from "@iaas/contracts";
import { requestJson } from "@iaas/runtime";
import type { ParsedCommand } from "../commands/parse.js";
import type { AnswerEnv, QueryVerb } from "../commands/verb.js";
import { mayRun, scopeOfVerb } from "../commands/verbs.js";
import { code } from "../presentation/mrkdwn.js";
import { ephemeral, errorText, userFacingError } from "../presentation/render.js";
import type { SlackMessage } from "../transport/reply.js";
import { withinBudget } from "./budget.js";
import { QUERY_BUDGET_MS, QUERY_TIMEOUT_MS, actorOn, type Ack, type Call, type Pending, type SlashDeps } from "./call.js";

/** A `list` scope holds at most this many teams (the proxy's vm-list request). */
const MAX_SCOPE_TEAMS = 200;

/** How a query is answered: local ones in the ack, remote ones in the ack when quick, else on the response_url. */
export class Queries {
  constructor(
    private readonly d: SlashDeps,
    private readonly pending: Pending,
  ) {}

  /** A query: answered in the ack (local, or remote and quick), or on the response_url when slow. */
  async answer(record: QueryVerb<ParsedCommand>, cmd: ParsedCommand, c: Call, label: string): Promise<Ack> {
    const { d } = this;
    const env: AnswerEnv = {
      policy: d.policy,
      actor: c.actor,
      id: c.id,
      mayRun: (verb) => mayRun(d.policy, c.actor, verb),
      actorOn: (team) => actorOn(d.groups, c.actor, team),
      teams: () => [...new Set([...d.groups.allGroupsOf(c.actor.userId, MAX_SCOPE_TEAMS), ...d.policy.teamsOf(c.actor)])].slice(0, MAX_SCOPE_TEAMS),
      scopeOf: (verb) => scopeOfVerb(d.policy, c.actor, verb),
      vcenters: d.vcenters,
      ask: (ep, req) => requestJson(d.nc, ep, req, { timeoutMs: QUERY_TIMEOUT_MS, requestId: c.id, traceparent: c.traceparent }),
      held: (key) => d.quotas.held(key),
      pause: d.pause,
      now: d.now,
      approvals: { pendingFor: (actor) => d.approvals.pendingFor(actor) },
      audit: {
        latest: (q) => d.auditor.latest(q),
        succeeded: (verb, vm, message) => d.auditor.succeeded(c.actor, c.id, verb, vm, message),
      },
    };
    if (record.kind === "local") return { message: await record.answer(cmd, env), verb: label, outcome: "answered" };
    return this.query(c, label, () => record.answer(cmd, env));
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
    this.pending.track(
      work.then(
        (m) => this.d.replier.later(c.p, { ...m, replace_original: false }, c.id),
        (err: unknown) => this.d.replier.later(c.p, { ...failure(err).message, replace_original: false }, c.id),
      ),
    );
    return { message: ephemeral(`:mag: Looking that up… (request ${code(c.id)})`), verb, outcome: "answered" };
  }
}
