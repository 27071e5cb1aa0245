import type { z } from "zod";
import type { Actor, Command, VmSummary } from "@iaas/contracts";
import type { CommandId, Policy } from "@iaas/policy";
import type { JsonEndpoint } from "@iaas/runtime";
import type { Block } from "../presentation/blocks.js";
import type { SlackMessage } from "../transport/reply.js";
import type { AuditRow } from "../stores/audit.js";
import type { ParsedCommand, Verb } from "./parse.js";
import type { QuotaGate } from "../stores/quotas.js";

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
  ask<Req extends z.ZodType, Res extends z.ZodType>(ep: JsonEndpoint<Req, Res>, req: z.input<Req>): Promise<z.infer<Res>>;
  /** What requests in flight hold on a quota key (`user.U…`, `team.…`). */
  held: QuotaGate["held"];
  audit: {
    latest(q: { vm?: string | undefined }): Promise<{ records: AuditRow[]; scanned: number }>;
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
  /** The VM as vCenter has it; undefined when the look-up could not be made (the command service checks again). */
  lookup(vm: string): Promise<VmSummary | undefined>;
}

/** A verb that changes something: checked here, then confirmed first or published at once. */
export interface ActionVerb<C extends ParsedCommand> extends VerbCommon<C> {
  kind: "action";
  /** The checks the gateway can make from the command alone (names, sizes, limits, protected names); the command service makes them again. */
  precheck(policy: Policy, cmd: C): void;
  /** Checks that need vCenter, before Confirm/Cancel, and the facts the prompt shows. */
  inspect?(cmd: C, env: InspectEnv): Promise<Block[]>;
  /** The command published to JetStream (validated by its contract schema). */
  command(cmd: C, base: Pick<Command, "id" | "actor" | "issuedAt">): Command;
  /** What an accepted command is doing, without the request id: `Deleting \`web-01\``. */
  doing(cmd: C): string;
  /** The Confirm / Cancel question; "Run `/iaas …`?" when not given. */
  question?(cmd: C): string;
}

export type VerbRecord<C extends ParsedCommand> = QueryVerb<C> | ActionVerb<C>;

/** The record of verb V, typed for its own command. */
export type RecordOf<V extends Verb> = VerbRecord<Extract<ParsedCommand, { verb: V }>>;
