import type { z } from "zod";
import type { Actor, ApprovalRecord, Command, VmRef, VmSummary } from "@iaas/contracts";
import type { ApprovalFacts, CommandId, Policy, Scope } from "@iaas/policy";
import type { JsonEndpoint } from "@iaas/runtime";
import type { Block } from "../presentation/blocks.js";
import type { SlackMessage } from "../transport/reply.js";
import type { AuditRow } from "../stores/audit.js";
import type { ParsedCommand, Verb } from "./parse.js";
import type { QuotaGate } from "../stores/quotas.js";
import type { PauseStore } from "../stores/pause.js";

/**
 * Everything the gateway knows about one verb besides its grammar (parse.ts): which policy
 * command ids grant it, how it is named in metrics and the audit trail, the VM it is about, and
 * either how it is answered (a query) or what it publishes and says (an action). One record per
 * verb, in `commands/<verb>.ts`; `commands/verbs.ts` lists them, keyed by verb, so a verb without
 * a record does not compile.
 */
interface VerbCommon<C extends ParsedCommand> {
  /** Every policy command id that grants some form of the verb: `help` lists it when the actor has one. */
  ids: readonly CommandId[];
  /** The ids that let an actor run this command (any one suffices); `ids` when not given. */
  grants?(cmd: C): readonly CommandId[];
  /** `vm.delete`, `power.off`: its name in metrics and the audit trail; the verb when not given. */
  label?(cmd: C): string;
  /** The VM it is about (the new name for create, clone and deploy), for the audit record. */
  vm?(cmd: C): string | undefined;
}

/** What a query's answer may use: the policy, the audit trail, and vcenter-proxy with the request's id, trace and timeout. */
export interface AnswerEnv {
  policy: Policy;
  actor: Actor;
  id: string;
  /** Whether the actor may run some form of a verb (what `help` lists). */
  mayRun(verb: Verb): boolean;
  /** The actor as the policy should see it on a VM of this team: with the team's user group when the actor is in it. */
  actorOn(team: string | undefined): Actor;
  /** Every team the actor is in (all their Slack user groups and the policy's teams), for `list`'s scope. */
  teams(): string[];
  /** How far the actor's grants for a verb reach (`help`). */
  scopeOf(verb: Verb): Scope | undefined;
  /** Every vCenter id the gateway knows, `default` first (one: only the default vCenter). */
  vcenters: readonly string[];
  ask<Req extends z.ZodType, Res extends z.ZodType>(ep: JsonEndpoint<Req, Res>, req: z.input<Req>): Promise<z.infer<Res>>;
  /** What requests in flight hold on a quota key (`user.U…`, `team.…`). */
  held: QuotaGate["held"];
  /** The pause of automatic remediation (`remediation pause|resume|status`). */
  pause: PauseStore;
  /** The gateway's clock. */
  now(): number;
  /** The pending requests for approval the actor asked for or may decide. */
  approvals: { pendingFor(actor: Actor): Promise<{ asked: ApprovalRecord[]; toDecide: ApprovalRecord[] }> };
  audit: {
    latest(q: { vm?: string | undefined; match?: (row: AuditRow) => boolean }): Promise<{ records: AuditRow[]; scanned: number }>;
    succeeded(verb: string, vm: string | undefined, message: string): void;
  };
}

/**
 * A verb answered by the gateway. `local` answers from what the gateway holds (policy, the
 * command text) and answers in the ack; `remote` asks another service and races the ack budget:
 * a slow answer follows on the response_url.
 */
export interface QueryVerb<C extends ParsedCommand> extends VerbCommon<C> {
  kind: "local" | "remote";
  answer(cmd: C, env: AnswerEnv): Promise<SlackMessage>;
}

/** What an action's checks before confirmation may use. */
export interface InspectEnv {
  policy: Policy;
  actor: Actor;
  /** The VM as vCenter has it (`target`), already checked; undefined when the look-up could not be made in time (the command service checks again). */
  vm: VmSummary | undefined;
}

/** The VM an action changes (or, for clone, reads) and the policy command it is checked as. */
export interface Target {
  vm: VmRef;
  id: CommandId;
}

/** A verb that changes something: checked here, then confirmed first or published at once. */
export interface ActionVerb<C extends ParsedCommand> extends VerbCommon<C> {
  kind: "action";
  /**
   * The record the command runs as for this actor, when that depends on who asks (`lease <vm>
   * set`: with `lease.set` it sets, with only `lease.extend` it is an extend, within the same
   * limits and approvals); this one when not given. Asked before any other check.
   */
  runAs?(cmd: C, env: { policy: Policy; actor: Actor }): ActionVerb<C>;
  /** The checks the gateway can make from the command alone (names, sizes, limits, protected names); the command service makes them again. */
  precheck(policy: Policy, cmd: C): void;
  /**
   * The VM the command names. The gateway looks it up within the ack budget and refuses in the
   * ack when it does not exist, the name is ambiguous, it is protected, or the actor's grant does
   * not reach it (`authorizeOn`); when the look-up is too slow, the command goes on and the
   * command service decides.
   */
  target?(cmd: C): Target;
  /**
   * The team a new VM is given (`team=` of create, clone, deploy). The actor must be in it unless
   * an admin (`owner:any`), and carries its user group to the command service.
   */
  newTeam?(cmd: C): string | undefined;
  /** Checks of the looked-up VM beyond those (an owner change of a template). */
  checkTarget?(cmd: C, vm: VmSummary): void;
  /**
   * What the policy's approval rules look at in this command (`policy.approvalFor`): the command
   * id, the VM, the size, the vCPU and memory it ends with, the lease asked for. Undefined (or
   * not given): no rule can match it. A command a rule matches waits for an approver instead of
   * being published.
   */
  approvalFacts?(cmd: C, env: InspectEnv): ApprovalFacts | undefined;
  /** The facts the Confirm/Cancel prompt shows. */
  inspect?(cmd: C, env: InspectEnv): Promise<Block[]>;
  /** The command published to JetStream (validated by its contract schema). */
  command(cmd: C, base: Pick<Command, "id" | "actor" | "issuedAt">): Command;
  /** What an accepted command is doing, without the request id: `Deleting \`web-01\``. */
  doing(cmd: C): string;
  /** The Confirm / Cancel question; "Run `/iaas …`?" when not given. */
  question?(cmd: C): string;
}

export type VerbRecord<C extends ParsedCommand> = QueryVerb<C> | ActionVerb<C>;

/**
 * A verb whose forms differ in kind (`snapshot list` a query, `snapshot create` an action): `of`
 * gives the record of one command; `ids` are those of every form, as for any verb.
 */
export interface SplitVerb<C extends ParsedCommand> {
  kind: "split";
  ids: readonly CommandId[];
  of(cmd: C): VerbRecord<C>;
}

/** The record of verb V, typed for its own command. */
export type RecordOf<V extends Verb> = VerbRecord<Extract<ParsedCommand, { verb: V }>> | SplitVerb<Extract<ParsedCommand, { verb: V }>>;
