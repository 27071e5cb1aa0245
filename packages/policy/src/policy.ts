import { IaasError, formatMemory, type Actor } from "@iaas/contracts";
import { COMMAND_IDS, commandLabel, expandCommandPattern, type CommandId } from "./commands.js";
import { compileGlob, matchesAny, type Glob } from "./glob.js";
import type { Binding, Limits, Placement, PolicyDocument, RemediationSettings, Size } from "./schema.js";

/**
 * Commands that no user may run on a protected VM (SPEC: delete, power off, reset, suspend,
 * resize). `power.shutdown` ends powered off, and `power.reboot` interrupts the VM as a reset
 * does (only more politely), so both are refused too. `power.on`, `info`, `list` and `clone`
 * (the source is only read) stay allowed.
 */
export const PROTECTED_COMMANDS: readonly CommandId[] = [
  "delete",
  "delete.any",
  "power.off",
  "power.reset",
  "power.suspend",
  "power.shutdown",
  "power.reboot",
  "resize",
];

const DONE: Partial<Record<CommandId, string>> = {
  delete: "deleted",
  "delete.any": "deleted",
  "power.off": "powered off",
  "power.reset": "reset",
  "power.suspend": "suspended",
  "power.shutdown": "shut down",
  "power.reboot": "rebooted",
  resize: "resized",
};

export type NamedSize = Size & { name: string };
export type AlarmKind = "cpu" | "memory" | "datastore" | "vmStorage";
/** A VM as protection sees it: its name and, once resolved, its inventory path. */
export type VmIdentity = { name: string; path?: string | undefined };

/** `/DC0/vm/a/b` → `b`; a plain name is itself. */
function leafOf(ref: string): string {
  return ref.startsWith("/") ? (ref.split("/").filter(Boolean).pop() ?? ref) : ref;
}

const fmtGB = (gb: number) => (gb < 1 ? `${Math.round(gb * 1024)} MB` : `${gb} GB`);
export function describeSize(s: Size): string {
  return `${s.cpu} vCPU, ${formatMemory(Math.round(s.memoryGB * 1024))} memory, ${fmtGB(s.diskGB)} disk`;
}

/**
 * The evaluator: one instance per loaded policy, shared by the gateway and every service that
 * consumes commands, so a command published straight to NATS meets the same checks as one from
 * Slack. Every check either returns or throws an IaasError whose message a business user can act
 * on. Build it with loadPolicy / parsePolicy, which validate the document first.
 */
export class Policy {
  readonly source: string;
  readonly document: PolicyDocument;

  private readonly grants = new Map<string, ReadonlySet<CommandId>>();
  private readonly protectedNames: Glob[];
  private readonly protectedFolders: string[];
  private readonly restartOptIn: Glob[];
  private readonly excludedDatastores: Glob[];
  private readonly namePattern: RegExp;
  private readonly confirmSet: ReadonlySet<CommandId>;
  private readonly alarms: Record<AlarmKind, ReadonlySet<string>>;

  constructor(document: PolicyDocument, source: string) {
    this.document = document;
    this.source = source;
    for (const [role, entries] of Object.entries(document.roles)) {
      this.grants.set(role, new Set(entries.flatMap((e) => expandCommandPattern(e) ?? [])));
    }
    // Protection errs on the safe side: `PROD-db` is as protected as `prod-db`, and excluding a
    // datastore by a case-insensitive glob only ever narrows what remediation touches. Restart
    // opt-in widens what remediation may do, so it matches case-sensitively.
    this.protectedNames = document.protected.names.map((g) => compileGlob(g, { caseInsensitive: true }));
    this.protectedFolders = document.protected.folders.map((f) => f.replace(/\/+$/, "").toLowerCase());
    this.restartOptIn = document.remediation.restartOptIn.names.map((g) => compileGlob(g, { caseInsensitive: false }));
    this.excludedDatastores = document.remediation.excludedDatastores.map((g) => compileGlob(g, { caseInsensitive: true }));
    this.namePattern = new RegExp(document.naming.pattern);
    this.confirmSet = new Set(document.confirm.flatMap((e) => expandCommandPattern(e) ?? []));
    const norm = (names: string[]) => new Set(names.map((n) => n.trim().toLowerCase()));
    this.alarms = {
      cpu: norm(document.remediation.cpuAlarms),
      memory: norm(document.remediation.memoryAlarms),
      datastore: norm(document.remediation.datastoreAlarms),
      vmStorage: norm(document.remediation.vmStorageAlarms),
    };
  }

  // ---- who may do what -------------------------------------------------------------------

  /**
   * The Slack user group ids any binding names, in policy order, each once. Only the gateway
   * resolves Slack users to groups, and only these matter to the policy (docs/policy.md).
   */
  get boundGroups(): readonly string[] {
    return [...new Set(this.document.bindings.flatMap((b) => b.groups ?? []))];
  }

  /** Whether any binding names a user group: only then is group membership worth looking up. */
  get usesGroups(): boolean {
    return this.document.bindings.some((b) => (b.groups?.length ?? 0) > 0);
  }

  /** The roles bound to the actor, in the order the policy defines roles. */
  rolesOf(actor: Actor): string[] {
    const bound = new Set(this.document.bindings.filter((b) => bindingMatches(b, actor)).map((b) => b.role));
    return Object.keys(this.document.roles).filter((r) => bound.has(r));
  }

  can(actor: Actor, command: CommandId): boolean {
    return this.rolesOf(actor).some((r) => this.grants.get(r)?.has(command));
  }

  /** What the actor may run, in `help` order. */
  allowedCommands(actor: Actor): CommandId[] {
    const roles = this.rolesOf(actor);
    return COMMAND_IDS.filter((c) => roles.some((r) => this.grants.get(r)?.has(c)));
  }

  /** Throws IAAS_NOT_ALLOWED unless the actor's roles grant `command`. */
  authorize(actor: Actor, command: CommandId): void {
    if (this.can(actor, command)) return;
    const label = `\`${commandLabel(command)}\``;
    const roles = this.rolesOf(actor);
    if (roles.length === 0) {
      throw new IaasError("IAAS_NOT_ALLOWED", `You have no role in the IaaS policy, so you cannot run ${label}. Ask an IT admin to add you.`);
    }
    const granting = [...this.grants].filter(([, cmds]) => cmds.has(command)).map(([r]) => r);
    const needs = granting.length
      ? `it needs the ${granting.join(" or ")} role`
      : "no role in the policy allows it";
    throw new IaasError(
      "IAAS_NOT_ALLOWED",
      `You are not allowed to run ${label}: ${needs}, and you have ${roles.join(", ")}. Ask an IT admin.`,
    );
  }

  /** Builders delete their own VMs; `delete.any` (admin) deletes any VM. */
  canDelete(actor: Actor, ownerUserId: string | undefined): boolean {
    if (this.can(actor, "delete.any")) return true;
    return this.can(actor, "delete") && ownerUserId !== undefined && ownerUserId === actor.userId;
  }

  /** Throws IAAS_NOT_ALLOWED unless the actor may delete this VM (it says whose VM it is). */
  authorizeDelete(actor: Actor, vm: { name: string; owner?: string | undefined }): void {
    if (this.canDelete(actor, vm.owner)) return;
    this.authorize(actor, "delete");
    const name = `\`${leafOf(vm.name)}\``;
    throw new IaasError(
      "IAAS_NOT_ALLOWED",
      vm.owner === undefined
        ? `You can only delete VMs you own, and ${name} has no recorded owner (it was not made through IaaS). Ask an IT admin.`
        : `You can only delete VMs you own, and ${name} belongs to <@${vm.owner}>. Ask them or an IT admin.`,
    );
  }

  // ---- protected VMs ---------------------------------------------------------------------

  /**
   * Why the VM is protected (`its name matches prod-*`), or undefined. `vm` may be a name or an
   * inventory path (`/DC0/vm/prod/db`). Folder rules can only match when the path is known: the
   * gateway checks names before it publishes; services check again with the resolved path.
   */
  protectionOf(vm: string, inventoryPath?: string): string | undefined {
    const name = leafOf(vm);
    const glob = matchesAny(this.protectedNames, name);
    if (glob) return `its name matches \`${glob.source}\``;
    const path = (inventoryPath ?? (vm.startsWith("/") ? vm : undefined))?.toLowerCase();
    if (path === undefined) return undefined;
    const folder = this.protectedFolders.find((f) => path.startsWith(`${f}/`));
    return folder === undefined ? undefined : `it is in the protected folder \`${this.document.protected.folders[this.protectedFolders.indexOf(folder)]}\``;
  }

  /** Whether any VM is protected by folder: only then does protection depend on where a VM is. */
  get protectsFolders(): boolean {
    return this.protectedFolders.length > 0;
  }

  isProtected(vm: string, inventoryPath?: string): boolean {
    return this.protectionOf(vm, inventoryPath) !== undefined;
  }

  /** Throws IAAS_PROTECTED_VM when `command` is one of PROTECTED_COMMANDS and the VM is protected. */
  checkProtected(command: CommandId, vm: VmIdentity): void {
    if (!PROTECTED_COMMANDS.includes(command)) return;
    const why = this.protectionOf(vm.name, vm.path);
    if (why === undefined) return;
    throw new IaasError(
      "IAAS_PROTECTED_VM",
      `\`${leafOf(vm.name)}\` is protected by policy (${why}): it cannot be ${DONE[command] ?? commandLabel(command)} from Slack. Ask an IT admin.`,
    );
  }

  // ---- sizes, limits, names, quotas ------------------------------------------------------

  get limits(): Limits {
    return this.document.limits;
  }

  get placement(): Placement {
    return this.document.placement;
  }

  /** Sizes in policy order, for `/iaas sizes`. */
  sizes(): NamedSize[] {
    return Object.entries(this.document.sizes).map(([name, s]) => ({ name, ...s }));
  }

  get defaultSize(): NamedSize {
    return { name: this.document.defaultSize, ...this.document.sizes[this.document.defaultSize]! };
  }

  /** The named size (case-insensitive), or the default size; IAAS_UNKNOWN_SIZE lists the valid ones. */
  resolveSize(name?: string): NamedSize {
    if (name === undefined || name === "") return this.defaultSize;
    const key = name.toLowerCase();
    const size = Object.hasOwn(this.document.sizes, key) ? this.document.sizes[key] : undefined;
    if (size) return { name: key, ...size };
    const valid = this.sizes()
      .map((s) => `\`${s.name}\` (${describeSize(s)})`)
      .join(", ");
    throw new IaasError("IAAS_UNKNOWN_SIZE", `There is no size \`${name}\`. Sizes: ${valid}.`);
  }

  /**
   * The CPU and memory a resize ends with, if within limits. `change` holds the requested
   * absolute values (`cpu=4 memory=8`); what is left out stays as `current`.
   */
  checkResize(current: { cpu: number; memoryGB: number }, change: { cpu?: number | undefined; memoryGB?: number | undefined }): { cpu: number; memoryGB: number } {
    const { maxCpu, maxMemoryGB } = this.document.limits;
    if (change.cpu === undefined && change.memoryGB === undefined) {
      throw new IaasError("IAAS_SYNTAX", "Say what to change: `cpu=N`, `memory=GB` or both.");
    }
    if (change.cpu !== undefined) {
      if (!Number.isInteger(change.cpu) || change.cpu < 1) {
        throw new IaasError("IAAS_SYNTAX", `\`cpu=${change.cpu}\` is not a valid number of vCPUs: use a whole number from 1 to ${maxCpu}.`);
      }
      if (change.cpu > maxCpu) {
        throw new IaasError("IAAS_LIMIT_EXCEEDED", `\`cpu=${change.cpu}\` is more than the policy allows: at most ${maxCpu} vCPU.`);
      }
    }
    if (change.memoryGB !== undefined) {
      if (!(change.memoryGB > 0) || !Number.isInteger(change.memoryGB * 256)) {
        throw new IaasError("IAAS_SYNTAX", `\`memory=${change.memoryGB}\` is not a valid memory size: use GB, for example \`memory=8\` or \`memory=0.5\`.`);
      }
      if (change.memoryGB > maxMemoryGB) {
        throw new IaasError("IAAS_LIMIT_EXCEEDED", `\`memory=${change.memoryGB}\` is more than the policy allows: at most ${maxMemoryGB} GB.`);
      }
    }
    return { cpu: change.cpu ?? current.cpu, memoryGB: change.memoryGB ?? current.memoryGB };
  }

  /**
   * Throws IAAS_NAME_NOT_ALLOWED unless `name` may be given to a new VM: the naming rule, its
   * maximum length, no path, and not a protected name (a user could not manage such a VM, and it
   * would pass for one of IT's).
   */
  checkName(name: string): void {
    const { description, maxLength } = this.document.naming;
    const refuse = (why: string) => {
      throw new IaasError("IAAS_NAME_NOT_ALLOWED", `\`${name}\` cannot be used as a VM name: ${why}.`);
    };
    if (name.length > maxLength) refuse(`it is longer than ${maxLength} characters`);
    if (!this.namePattern.test(name) || name.includes("/") || /[*?\u0000-\u001f\u007f]/.test(name)) refuse(`use ${description}`);
    const glob = matchesAny(this.protectedNames, name);
    if (glob) refuse(`names matching \`${glob.source}\` are reserved for protected VMs`);
  }

  /** The number of VMs the actor may own. */
  quotaOf(actor: Actor): number {
    return this.document.quotas.users[actor.userId] ?? this.document.quotas.vmsPerUser;
  }

  /** Throws IAAS_QUOTA_EXCEEDED when making one more VM would exceed the actor's quota. */
  checkQuota(ownedCount: number, actor: Actor): void {
    const quota = this.quotaOf(actor);
    if (ownedCount < quota) return;
    throw new IaasError(
      "IAAS_QUOTA_EXCEEDED",
      `You already own ${ownedCount} VM${ownedCount === 1 ? "" : "s"} and your quota is ${quota}. Delete one you no longer need, or ask an IT admin to raise your quota.`,
    );
  }

  // ---- confirmation and rate --------------------------------------------------------------

  needsConfirmation(command: CommandId): boolean {
    return this.confirmSet.has(command);
  }

  get confirmTtlSeconds(): number {
    return this.document.confirmTtlSeconds;
  }

  get rateLimitPerUserPerMinute(): number {
    return this.document.rateLimit.perUserPerMinute;
  }

  // ---- remediation -------------------------------------------------------------------------

  get remediation(): RemediationSettings {
    return this.document.remediation;
  }

  /** Whether `alarmName` is one of the configured alarms of `kind` (trimmed, case-insensitive). */
  isAlarm(kind: AlarmKind, alarmName: string): boolean {
    return this.alarms[kind].has(alarmName.trim().toLowerCase());
  }

  /** Which kind of remediation alarm `alarmName` is, if any. */
  alarmKind(alarmName: string): AlarmKind | undefined {
    return (["cpu", "memory", "datastore", "vmStorage"] as const).find((k) => this.isAlarm(k, alarmName));
  }

  /** Whether remediation may restart this VM to add CPU or memory (remediation.restartOptIn). */
  mayRestart(vmName: string): boolean {
    return matchesAny(this.restartOptIn, leafOf(vmName)) !== undefined;
  }

  /** Whether datastore evacuation must not move VMs onto this datastore. */
  isDatastoreExcluded(datastoreName: string): boolean {
    return matchesAny(this.excludedDatastores, datastoreName) !== undefined;
  }
}

function bindingMatches(b: Binding, actor: Actor): boolean {
  if (b.everyone) return true;
  if (b.users?.includes(actor.userId)) return true;
  if (actor.channelId !== undefined && b.channels?.includes(actor.channelId)) return true;
  return actor.groups?.some((g) => b.groups?.includes(g)) ?? false;
}
