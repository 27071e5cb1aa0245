import { IaasError, ProxyEndpoints, type Actor, type Command, type VmSummary } from "@iaas/contracts";
import { describeSize, teamLabel, type Policy } from "@iaas/policy";
import { inVcenter, requestJson } from "@iaas/runtime";
import type { ParsedCommand } from "../commands/parse.js";
import type { ActionVerb, InspectEnv } from "../commands/verb.js";
import { acceptedText, grantsOf, labelOf, questionText, vmOf } from "../commands/verbs.js";
import type { Block } from "../presentation/blocks.js";
import { code } from "../presentation/mrkdwn.js";
import { ephemeral, errorText } from "../presentation/render.js";
import { withinBudget } from "./budget.js";
import { ACK_BUDGET_MS, LOOKUP_TIMEOUT_MS, MIN_PUBLISH_BUDGET_MS, PUBLISH_TIMEOUT_MS, STORE_TIMEOUT_MS, actorOn, foreignResponseUrl, replyable, unavailable, type Ack, type Call, type Pending, type SlashDeps } from "./call.js";
import { confirmationPrompt } from "./confirm.js";
import { CommandPublisher } from "./publish.js";

/**
 * `team=`: the VM goes to a team the actor is in, unless they are an admin (`owner:any`, who may
 * give any VM to any team); vm-lifecycle checks the same.
 */
function checkTeamMember(policy: Policy, actor: Actor, team: string): void {
  if (policy.scopeOf(actor, "owner") === "any" || policy.teamsOf(actor).includes(team)) return;
  throw new IaasError("IAAS_NOT_ALLOWED", `\`team=${team}\`: you are not in ${teamLabel(team)}, so you cannot give it a VM. Ask an IT admin.`);
}

/** How a command that changes something goes on: checked, then confirmed first or published now. */
export class Actions {
  private readonly publisher: CommandPublisher;

  constructor(
    private readonly d: SlashDeps,
    private readonly pending: Pending,
  ) {
    this.publisher = new CommandPublisher({ js: d.js, requests: d.requests });
  }

  /** A command that changes something: checked, then confirmed first or published now. */
  async act(asked: ActionVerb<ParsedCommand>, cmd: ParsedCommand, c: Call): Promise<Ack> {
    const { policy } = this.d;
    const started = performance.now();
    const record = asked.runAs?.(cmd, { policy, actor: c.actor }) ?? asked;
    record.precheck(policy, cmd);
    let actor = c.actor;
    let vm: VmSummary | undefined;
    const team = record.newTeam?.(cmd);
    if (team !== undefined) {
      actor = actorOn(this.d.groups, actor, team);
      checkTeamMember(policy, actor, team);
    }
    const target = record.target?.(cmd);
    if (target) {
      // The checks at the door: the VM exists, its name is unique, it is not protected, and the
      // actor's grant reaches it. Refused here, in the ack; the command service checks again.
      // A request whose answer could not go anywhere asks vCenter nothing.
      await c.admit();
      if (!replyable(this.d, c)) return foreignResponseUrl(c, labelOf(cmd));
      vm = await this.lookup(target.vm, c, cmd.vcenter);
      if (vm) {
        actor = actorOn(this.d.groups, actor, vm.team);
        policy.checkProtected(target.id, { name: vm.name, path: vm.path }, { via: actor.via, resolved: true });
        policy.authorizeOn(actor, target.id, vm);
        record.checkTarget?.(cmd, vm);
      }
    }
    const facts: Block[] = record.inspect ? await record.inspect(cmd, { policy, actor, vm }) : [];
    const command = record.command(cmd, { id: c.id, actor, issuedAt: new Date(this.d.now()).toISOString() });
    const label = labelOf(cmd);
    // A command an approval rule matches waits for an approver instead of a confirmation or a
    // publish: the approver's yes is the last word, and publishes it.
    const waits = await this.approval(record, cmd, command, { policy, actor, vm }, c);
    if (waits) return waits;
    if (grantsOf(cmd).some((id) => policy.needsConfirmation(id))) {
      await c.admit();
      return this.askConfirmation(record, cmd, command, c, facts);
    }
    // What the look-up took comes off the publish's share of the ack budget.
    const budgetMs = Math.max(MIN_PUBLISH_BUDGET_MS, ACK_BUDGET_MS - (performance.now() - started));
    return this.submit(command, c, acceptedText(record, cmd, c.id), label, budgetMs);
  }

  /**
   * Whether the command waits for an approval, and if so the ack that says for whom and until
   * when. A create, clone or deploy over quota is refused here as always, unless a `quotaOverrun`
   * rule lets it wait for an approver instead; one a rule matches for another reason is checked
   * against the quota now (not reserved: that happens on approval), so approvers are not asked
   * for what could not run anyway.
   */
  private async approval(record: ActionVerb<ParsedCommand>, cmd: ParsedCommand, command: Command, env: InspectEnv, c: Call): Promise<Ack | undefined> {
    const { policy } = this.d;
    const facts = record.approvalFacts?.(cmd, env);
    if (!facts) return undefined;
    let match = policy.approvalFor(facts);
    let overQuota = false;
    const overrun = policy.approvalFor({ ...facts, overQuota: true });
    const quotaMayWait = overrun?.rule.when.quotaOverrun === true;
    if (match || quotaMayWait) {
      try {
        await this.d.quotas.release(await this.d.quotas.reserve(command, c.traceparent));
      } catch (err) {
        if (!(err instanceof IaasError) || err.code !== "IAAS_QUOTA_EXCEEDED" || !quotaMayWait) throw err;
        match = overrun;
        overQuota = true;
      }
    }
    if (!match) return undefined;
    await c.admit();
    const label = labelOf(cmd);
    if (!replyable(this.d, c)) return foreignResponseUrl(c, label);
    const size = facts.size ? ` (${facts.size.name}: ${describeSize(facts.size)})` : "";
    const summary = `${record.doing(cmd)}${size}`;
    try {
      const message = await this.d.approvals.ask({ command, match, overQuota, verb: label, vm: vmOf(cmd), summary, p: c.p }, c.log);
      return { message, verb: label, outcome: "approval" };
    } catch (err) {
      c.log.error({ err }, "could not store the request for approval");
      return { message: ephemeral(errorText(unavailable(), c.id)), verb: label, outcome: "unavailable", code: "IAAS_UNAVAILABLE" };
    }
  }

  /**
   * The VM a command names, in the vCenter it names (`vc=`), looked up within the ack budget. Not found or ambiguous: the proxy's
   * error, refused in the ack. If vCenter is slow or the proxy is away, undefined: the command
   * goes on (or its buttons are shown) and the command service checks.
   */
  private async lookup(vm: string, c: Call, vcenter: string | undefined): Promise<VmSummary | undefined> {
    try {
      return (await requestJson(this.d.nc, ProxyEndpoints.vmGet, { vm, ...inVcenter(vcenter) }, { timeoutMs: LOOKUP_TIMEOUT_MS, requestId: c.id, traceparent: c.traceparent })).vm;
    } catch (err) {
      if (err instanceof IaasError && (err.code === "IAAS_TIMEOUT" || err.code === "IAAS_UNAVAILABLE" || err.code === "IAAS_VCENTER_UNAVAILABLE")) {
        c.log.warn({ code: err.code }, "VM look-up at the door failed; the command service will check");
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
    if (!replyable(this.d, c)) return foreignResponseUrl(c, label);
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

  /**
   * Stores where to answer, then publishes the command with `Nats-Msg-Id` = id. The ack waits
   * up to ACK_BUDGET_MS for both: then it can say truthfully that the command is queued, or
   * that it is not. If NATS is slower than that, the ack says the command is on its way and a
   * later failure is posted to the response_url.
   */
  private async submit(command: Command, c: Call, acceptedLine: string, verb: string, budgetMs: number): Promise<Ack> {
    const { p, id } = c;
    const log = () => c.log.child({ verb });
    if (!replyable(this.d, c)) {
      await c.admit();
      return foreignResponseUrl(c, verb);
    }

    // The reply target is written while the rate limit is counted (two round trips at once); the
    // command is published only once both are done: within the limit, and its answer has
    // somewhere to go. A refused command leaves an unused record, which the bucket's TTL removes.
    // Without a response_url (the App Home) the results go to the user's DM (Replier).
    const stored = this.publisher.remember(
      {
        id,
        ...(p.response_url !== undefined ? { responseUrl: p.response_url } : {}),
        teamId: p.team_id,
        channelId: p.channel_id,
        userId: p.user_id,
        text: p.text,
        createdAt: new Date(Math.min(Date.now(), c.meta.responseUrlSince ?? Date.now())).toISOString(),
      },
      { posts: c.meta.responsePosts ?? 0, timeoutMs: STORE_TIMEOUT_MS },
    );
    await c.admit();
    // Create, clone, deploy: the quota share is taken before the command can run, so an over-quota
    // request (or one that lost the race to the last share) is refused here, in the ack. The
    // reservation races the ack budget with the publish: with a slow vCenter the ack goes first
    // and a refusal follows on the response_url, rather than an ack Slack has given up on.
    let reserved = false;
    let hold: Awaited<ReturnType<SlashDeps["quotas"]["reserve"]>>;
    const work = (async () => {
      hold = await this.d.quotas.reserve(command, c.traceparent);
      reserved = true;
      return this.publisher.publish(command, stored, { traceparent: c.traceparent, timeoutMs: PUBLISH_TIMEOUT_MS });
    })();
    const first = await withinBudget(work, budgetMs);
    if (first.kind === "done") {
      const { duplicate } = first.value;
      c.log.info({ verb, duplicate }, duplicate ? "command repeated; JetStream dropped the copy" : "command published");
      return { message: ephemeral(acceptedLine), verb, outcome: duplicate ? "duplicate" : "accepted" };
    }
    if (first.kind === "failed") {
      // A refusal of the reservation (over quota, or the usage could not be read) is the caller's to word.
      if (!reserved) throw first.err;
      log().error({ err: first.err }, "could not publish the command");
      await this.d.quotas.release(hold);
      return { message: ephemeral(errorText(unavailable(), id)), verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" };
    }
    log().warn({ budgetMs, reserved }, reserved ? "publishing is slow; acked before JetStream confirmed" : "the quota check is slow; acked before it decided");
    this.pending.track(
      work.then(
        () => log().info("command published after the ack"),
        async (err: unknown) => {
          if (!reserved) {
            const refusal = err instanceof IaasError ? err : unavailable();
            log().info({ code: refusal.code }, "refused after the ack by the quota check");
            this.d.metrics.commands.inc({ verb, outcome: refusal.code === "IAAS_QUOTA_EXCEEDED" ? "rejected" : "unavailable", code: refusal.code });
            await this.d.replier.later(p, ephemeral(errorText(refusal, id)), id);
            return;
          }
          log().error({ err }, "could not publish the command");
          await this.d.quotas.release(hold);
          this.d.metrics.commands.inc({ verb, outcome: "unavailable", code: "IAAS_UNAVAILABLE" });
          await this.d.replier.later(p, ephemeral(errorText(unavailable(), id)), id);
        },
      ),
    );
    return { message: ephemeral(acceptedLine), verb, outcome: "accepted" };
  }
}
