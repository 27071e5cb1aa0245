import type { Actor } from "@iaas/contracts";
import { isScoped, type CommandId, type Policy, type Scope } from "@iaas/policy";
import { code } from "../presentation/mrkdwn.js";
import { approvals } from "./approvals.js";
import { audit } from "./audit.js";
import { clone } from "./clone.js";
import { create } from "./create.js";
import { del } from "./delete.js";
import { deploy } from "./deploy.js";
import { echo } from "./echo.js";
import { extend } from "./extend.js";
import { help } from "./help.js";
import { info } from "./info.js";
import { lease } from "./lease.js";
import { list } from "./list.js";
import { owner } from "./owner.js";
import { parseCommand, type ParsedCommand, type Verb } from "./parse.js";
import { power } from "./power.js";
import { quota } from "./quota.js";
import { remediation } from "./remediation.js";
import { resize } from "./resize.js";
import { sizes } from "./sizes.js";
import { snapshot } from "./snapshot.js";
import { templates } from "./templates.js";
import type { ActionVerb, QueryVerb, RecordOf, SplitVerb, VerbRecord } from "./verb.js";

/** Every verb's record (commands/<verb>.ts). Keyed by verb: a verb without a record does not compile. */
export const VerbRecords: { readonly [V in Verb]: RecordOf<V> } = { help, list, info, templates, sizes, quota, create, clone, deploy, power, resize, delete: del, owner, snapshot, lease, extend, echo, audit, approvals, remediation };

/**
 * The record of a parsed command. Each record is typed for its own verb's command; `cmd.verb`
 * picks the record of that very command, so erasing the pairing here is sound.
 */
export function recordOf(cmd: ParsedCommand): VerbRecord<ParsedCommand> {
  const r = VerbRecords[cmd.verb] as unknown as VerbRecord<ParsedCommand> | SplitVerb<ParsedCommand>;
  return r.kind === "split" ? r.of(cmd) : r;
}

export function isAction(r: VerbRecord<ParsedCommand>): r is ActionVerb<ParsedCommand> {
  return r.kind === "action";
}
export function isQuery(r: VerbRecord<ParsedCommand>): r is QueryVerb<ParsedCommand> {
  return r.kind !== "action";
}

/** `vm.delete`, `power.off`, `list`: how a command is named in metrics and the audit trail. */
export function labelOf(cmd: ParsedCommand): string {
  return recordOf(cmd).label?.(cmd) ?? cmd.verb;
}

/** The VM a command is about, for the audit record. */
export function vmOf(cmd: ParsedCommand): string | undefined {
  return recordOf(cmd).vm?.(cmd);
}

/** The policy command ids that let an actor run this command (any one suffices). */
export function grantsOf(cmd: ParsedCommand): readonly CommandId[] {
  const r = recordOf(cmd);
  return r.grants?.(cmd) ?? r.ids;
}

/** Throws IAAS_NOT_ALLOWED (naming the role it needs) unless the actor may run `cmd`. */
export function authorizeParsed(policy: Policy, actor: Actor, cmd: ParsedCommand): void {
  const ids = grantsOf(cmd);
  if (ids.some((id) => policy.can(actor, id))) return;
  policy.authorize(actor, ids[0]!);
}

/** Whether `help` should list a verb for this actor: some form of it is allowed. */
export function mayRun(policy: Policy, actor: Actor, verb: Verb): boolean {
  const allowed = new Set(policy.allowedCommands(actor));
  return VerbRecords[verb].ids.some((id) => allowed.has(id));
}

/**
 * How far the actor's grants for a verb reach, for `help`: `any` (every VM) when every form of
 * it they may run reaches any VM, `own` (their own and their team's VMs) otherwise; undefined for
 * a verb that names no VM or that they may not run.
 */
export function scopeOfVerb(policy: Policy, actor: Actor, verb: Verb): Scope | undefined {
  const scopes = VerbRecords[verb].ids.filter(isScoped).flatMap((id) => policy.scopeOf(actor, id) ?? []);
  if (scopes.length === 0) return undefined;
  return scopes.every((s) => s === "any") ? "any" : "own";
}

/** The ack of an accepted action: what is happening and the request id. */
export function acceptedText(r: ActionVerb<ParsedCommand>, cmd: ParsedCommand, id: string): string {
  return `${r.doing(cmd)}… (request ${code(id)})`;
}

/** What the Confirm / Cancel prompt asks. */
export function questionText(r: ActionVerb<ParsedCommand>, cmd: ParsedCommand, typed: string): string {
  return r.question?.(cmd) ?? `Run ${code(`/iaas ${typed.trim().slice(0, 200)}`)}?`;
}

/**
 * Whether a button running `/iaas <text>` on this VM should be offered to the actor: the text
 * parses to a verb naming this very VM, its gateway checks pass, the VM is not protected for it,
 * and the actor's grant reaches it. The click is checked again in full (it runs the command).
 * A verb the grammar does not know yet (a feature not installed) is never offered.
 */
export function mayRunOn(policy: Policy, actor: Actor, text: string, vm: { name: string; path?: string | undefined; owner?: string | undefined; team?: string | undefined }): boolean {
  const cmd = parseCommand(text);
  if (!cmd.success) return false;
  const asked = recordOf(cmd.data);
  const r = isAction(asked) ? (asked.runAs?.(cmd.data, { policy, actor }) ?? asked) : asked;
  if (!isAction(r) || !r.target) return false;
  const t = r.target(cmd.data);
  if (t.vm !== vm.name) return false;
  try {
    r.precheck(policy, cmd.data);
    policy.checkProtected(t.id, { name: vm.name, path: vm.path });
  } catch {
    return false;
  }
  return grantsOf(cmd.data).some((id) => policy.mayActOn(actor, id, vm)) && policy.mayActOn(actor, t.id, vm);
}
