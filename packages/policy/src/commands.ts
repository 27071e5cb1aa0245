import { CommandAreas, type CommandArea } from "@iaas/contracts";

/**
 * Every command id a role may grant, in the order `help` lists them. A command id is the
 * policy's name for one thing a user can do: the slash-command verb, `power.<action>` for
 * power, and `delete.any` for deleting VMs the caller does not own.
 */
export const COMMAND_IDS = [
  "help",
  "list",
  "info",
  "templates",
  "sizes",
  "create",
  "clone",
  "deploy",
  ...CommandAreas.power.map((a) => `power.${a}` as const),
  "resize",
  "delete",
  "delete.any",
  "echo",
  "audit",
] as const;
export type CommandId = (typeof COMMAND_IDS)[number];

const KNOWN = new Set<string>(COMMAND_IDS);

export function isCommandId(s: string): s is CommandId {
  return KNOWN.has(s);
}

/**
 * Expands a role or confirm entry: a command id, `power.*` (every power action) or `*` (every
 * command). Undefined for anything else, so the loader can name the bad entry.
 */
export function expandCommandPattern(entry: string): CommandId[] | undefined {
  if (entry === "*") return [...COMMAND_IDS];
  if (entry === "power.*") return COMMAND_IDS.filter((c) => c.startsWith("power."));
  return isCommandId(entry) ? [entry] : undefined;
}

/**
 * The command id a NATS command (`iaas.cmd.<area>.<action>`) is authorized as, so a service
 * consuming commands checks the same grant the gateway checked. A `delete` is authorized as
 * `delete` and, for a VM the actor does not own, additionally needs `delete.any`.
 */
export function commandIdOf(area: CommandArea, action: string): CommandId {
  const id = area === "power" ? `power.${action}` : action;
  if (!isCommandId(id)) throw new TypeError(`no policy command id for ${area}.${action}`);
  return id;
}

/** How a command id reads to a Slack user: `power off`, `delete (any VM)`. */
export function commandLabel(id: CommandId): string {
  if (id === "delete.any") return "delete (any VM)";
  return id.replace(".", " ");
}
