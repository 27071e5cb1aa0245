import { CommandAreas, type CommandArea } from "@iaas/contracts";

/**
 * Every command id a role may grant, in the order `help` lists them. A command id is the
 * policy's name for one thing a user can do: the slash-command verb, or `power.<action>`.
 */
export const COMMAND_IDS = [
  "help",
  "list",
  "info",
  "templates",
  "sizes",
  "quota",
  "create",
  "clone",
  "deploy",
  ...CommandAreas.power.map((a) => `power.${a}` as const),
  "resize",
  "delete",
  "owner",
  "snapshot.list",
  "snapshot.create",
  "snapshot.revert",
  "snapshot.delete",
  "lease",
  "lease.extend",
  "lease.set",
  "approvals",
  "echo",
  "audit",
  "remediation",
] as const;
export type CommandId = (typeof COMMAND_IDS)[number];

/**
 * How far a grant reaches. `own`: VMs the caller owns or whose team the caller is in (`owner`:
 * only VMs the caller owns). `any`: every VM. Commands that name no VM are always `any`.
 */
export type Scope = "own" | "any";

/**
 * The commands that name a VM, whose grants are scoped: `power.*` reaches the caller's own and
 * team VMs, `power.*:any` every VM. `clone` is scoped by its source (a clone copies the
 * source's disks), `list` by what it shows (`list:any` allows `list all`).
 */
export const SCOPED_COMMANDS: ReadonlySet<CommandId> = new Set<CommandId>([
  "list",
  "info",
  "clone",
  ...CommandAreas.power.map((a) => `power.${a}` as const),
  "resize",
  "delete",
  "owner",
  "snapshot.list",
  "snapshot.create",
  "snapshot.revert",
  "snapshot.delete",
  "lease",
  "lease.extend",
  "lease.set",
]);

export const isScoped = (id: CommandId): boolean => SCOPED_COMMANDS.has(id);

const KNOWN = new Set<string>(COMMAND_IDS);

export function isCommandId(s: string): s is CommandId {
  return KNOWN.has(s);
}

/** One grant of a role: a command and how far it reaches. */
export interface Grant {
  command: CommandId;
  scope: Scope;
}

/** `power.*`, `snapshot.*`, `lease.*`: every command id of a family (`lease.*` holds `lease` too). */
function family(pattern: string): CommandId[] | undefined {
  const m = /^(power|snapshot|lease)\.\*$/.exec(pattern);
  if (!m) return undefined;
  return COMMAND_IDS.filter((c) => c === m[1] || c.startsWith(`${m[1]}.`));
}

/**
 * Expands a role entry: a command id, a family (`power.*`, `snapshot.*`, `lease.*`) or `*`
 * (every command, any VM), each optionally with `:any` (every VM, for commands that name one).
 * Version 1's `delete.any` reads as `delete:any`. An entry that is not one of these: a string
 * saying why, so the loader can name the bad entry.
 */
export function expandGrant(entry: string): Grant[] | string {
  if (entry === "*" || entry === "*:any") return COMMAND_IDS.map((command) => ({ command, scope: "any" as const }));
  if (entry === "delete.any") return [{ command: "delete", scope: "any" }];
  const [base, suffix, ...rest] = entry.split(":");
  if (rest.length > 0 || (suffix !== undefined && suffix !== "any")) return `unknown scope in "${entry}" (write the command alone for own and team VMs, or add :any for every VM)`;
  const ids = family(base ?? "") ?? (isCommandId(base ?? "") ? [base as CommandId] : undefined);
  if (ids === undefined) return `unknown command "${base}" (commands: ${COMMAND_IDS.join(", ")}, power.*, snapshot.*, lease.*, *)`;
  if (suffix === "any" && !ids.every(isScoped)) return `"${base}" names no VM, so it takes no :any (scoped commands: ${[...SCOPED_COMMANDS].join(", ")})`;
  return ids.map((command) => ({ command, scope: suffix === "any" || !isScoped(command) ? "any" : "own" }));
}

/**
 * Expands a confirm entry: a command id, a family (`power.*`, `snapshot.*`, `lease.*`) or `*`.
 * Undefined for anything else, so the loader can name the bad entry. (Confirmation has no scope.)
 */
export function expandCommandPattern(entry: string): CommandId[] | undefined {
  if (entry === "*") return [...COMMAND_IDS];
  return family(entry) ?? (isCommandId(entry) ? [entry] : undefined);
}

/**
 * The command id a NATS command (`iaas.cmd.<area>.<action>`) is authorized as, so a service
 * consuming commands checks the same grant the gateway checked.
 */
export function commandIdOf(area: CommandArea, action: string): CommandId {
  const id = area === "vm" ? action : `${area}.${action}`;
  if (!isCommandId(id)) throw new TypeError(`no policy command id for ${area}.${action}`);
  return id;
}

/** How a command id reads to a Slack user: `power off`, `snapshot revert`, `extend` (`lease.extend` is typed `/iaas extend`). */
export function commandLabel(id: CommandId): string {
  if (id === "lease.extend") return "extend";
  if (id === "lease.set") return "lease set";
  return id.replace(".", " ");
}

/**
 * The commands an `approvals` rule may name: those that make or change something an approver
 * would want to see first.
 */
export const APPROVABLE_COMMANDS = ["create", "clone", "deploy", "resize", "delete", "snapshot.revert", "lease.extend"] as const satisfies readonly CommandId[];
export type ApprovableCommand = (typeof APPROVABLE_COMMANDS)[number];
