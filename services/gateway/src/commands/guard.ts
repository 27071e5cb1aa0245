import type { Actor } from "@iaas/contracts";
import { commandIdOf, type CommandId, type Policy } from "@iaas/policy";
import type { ParsedCommand, Verb } from "./parse.js";

/**
 * The policy command ids that let an actor run a verb (any one suffices). `power` depends on the
 * action; `delete` is granted by `delete` (own VMs) or `delete.any`.
 */
export function commandIdsOf(cmd: ParsedCommand): CommandId[] {
  switch (cmd.verb) {
    case "power":
      return [commandIdOf("power", cmd.action)];
    case "delete":
      return ["delete", "delete.any"];
    default:
      return [cmd.verb];
  }
}

/** Throws IAAS_NOT_ALLOWED (naming the role it needs) unless the actor may run `cmd`. */
export function authorizeParsed(policy: Policy, actor: Actor, cmd: ParsedCommand): void {
  const ids = commandIdsOf(cmd);
  if (ids.some((id) => policy.can(actor, id))) return;
  policy.authorize(actor, ids[0]!);
}

/** Whether `help` should list a verb for this actor: some action of it is allowed. */
export function mayRun(policy: Policy, actor: Actor, verb: Verb): boolean {
  const allowed = new Set(policy.allowedCommands(actor));
  switch (verb) {
    case "power":
      return [...allowed].some((c) => c.startsWith("power."));
    case "delete":
      return allowed.has("delete") || allowed.has("delete.any");
    default:
      return allowed.has(verb);
  }
}

/**
 * The checks the gateway can make from the command alone, before it publishes (fast, and the
 * user hears at once): names, sizes, limits, protected names. The command services make them
 * again, with what only vCenter knows (folders, owners, quotas).
 */
export function precheck(policy: Policy, cmd: ParsedCommand): void {
  switch (cmd.verb) {
    case "create":
    case "deploy":
      policy.checkName(cmd.name);
      policy.resolveSize(cmd.size);
      return;
    case "clone":
      policy.checkName(cmd.name);
      return;
    case "power":
      policy.checkProtected(commandIdOf("power", cmd.action), { name: cmd.vm });
      return;
    case "resize":
      policy.checkProtected("resize", { name: cmd.vm });
      policy.checkResize({ cpu: 1, memoryGB: 1 }, { cpu: cmd.cpu, memoryGB: cmd.memoryGB });
      return;
    case "delete":
      policy.checkProtected("delete", { name: cmd.vm });
      return;
    default:
      return;
  }
}
