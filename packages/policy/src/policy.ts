import { IaasError, formatDuration, formatMemory, type Actor, type Usage } from "@iaas/contracts";
import { COMMAND_IDS, type ApprovableCommand, commandLabel, expandCommandPattern, expandGrant, isScoped, type CommandId, type Grant, type Scope } from "./commands.js";
import { compileGlob, matchesAny, type Glob } from "./glob.js";
import type { ApprovalRule, Binding, Leases, Limits, Placement, PolicyDocument, QuotaLimits, RemediationSettings, Size, Snapshots, VcenterPolicy } from "./schema.js";

/**
 * Commands that no user may run on a protected VM: delete, power off, reset, suspend, resize.
 * `power.shutdown` ends powered off, and `power.reboot` interrupts the VM as a reset does (only
 * more politely), so both are refused too; so is `owner` (a protected VM is IT's, and adopting it
 * would hand its power buttons to a user). `power.on`, `info`, `list` and `clone` (the source is
 * only read) stay allowed.
 */
export const PROTECTED_COMMANDS: readonly CommandId[] = [
  "delete",
  "owner",
  "power.off",
  "power.reset",
  "power.suspend",
  "power.shutdown",
  "power.reboot",
  "resize",
  "snapshot.revert",
  "snapshot.delete",
];

const DONE: Partial<Record<CommandId, string>> = {
  delete: "deleted",
  owner: "given another owner",
  "power.off": "powered off",
  "power.reset": "reset",
  "power.suspend": "suspended",
  "power.shutdown": "shut down",
  "power.reboot": "rebooted",
  resize: "resized",
  "snapshot.revert": "reverted to a snapshot",
  "snapshot.delete": "stripped of a snapshot",
};

export type NamedSize = Size & { name: string };
export type AlarmKind = "cpu" | "memory" | "datastore" | "vmStorage";
/** A VM as protection sees it: its name and, once resolved, its inventory path. */
export type VmIdentity = { name: string; path?: string | undefined };
/** A VM as scope sees it: its name and the owner and team recorded on it (custom attributes). */
export type VmOwnership = { name: string; owner?: string | undefined; team?: string | undefined };
/** How the actor stands to a VM: its owner, in its team, neither, or nobody owns it. */
export type Relation = "owner" | "team" | "other" | "unowned";
export type QuotaKind = "user" | "team";

/**
 * What the approval rules look at in a request: the command, the VM (the new name for create,
 * clone and deploy), the size asked for, the vCPU and memory the VM would have, the lease asked
 * for, and whether the request is over quota. Fields a command has not: left out.
 */
export interface ApprovalFacts {
  command: ApprovableCommand;
  vm?: string | undefined;
  size?: NamedSize | undefined;
  cpu?: number | undefined;
  memoryGB?: number | undefined;
  leaseMs?: number | undefined;
  overQuota?: boolean | undefined;
}

/** A rule that matched, and why, in words for the card and the ack ("size `xlarge` needs an approval"). */
export type ApprovalMatch = { rule: ApprovalRule; why: string };

/** Nothing used: the usage of an owner or team without VMs. */
export const NO_USAGE: Usage = { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 };
export const QUOTA_FIELDS = ["vms", "cpu", "memoryGB", "diskGB"] as const;
type QuotaField = (typeof QUOTA_FIELDS)[number];
const round = (n: number) => +n.toFixed(3);
const QUOTA_UNITS: Record<QuotaField, (n: number) => string> = {
  vms: (n) => (n === 1 ? "VM" : "VMs"),
  cpu: () => "vCPU",
  memoryGB: () => "GB memory",
  diskGB: () => "GB disk",
};
/** How a team reads in a message: a user group as a Slack mention, a policy team by name. */
export const teamLabel = (team: string): string => (/^S[A-Z0-9]+$/.test(team) ? `<!subteam^${team}>` : `team \`${team}\``);

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

  private readonly grants = new Map<string, ReadonlyMap<CommandId, Scope>>();
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
      const scopes = new Map<CommandId, Scope>();
      for (const entry of entries) {
        const grants = expandGrant(entry);
        if (typeof grants === "string") continue; // the schema refused it already
        // Two entries for one command: the wider one holds.
        for (const g of grants) if (scopes.get(g.command) !== "any") scopes.set(g.command, g.scope);
      }
      this.grants.set(role, scopes);
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
   * resolves Slack users to groups, and only these matter to the roles (docs/policy.md).
   */
  get boundGroups(): readonly string[] {
    return [...new Set(this.document.bindings.flatMap((b) => b.groups ?? []))];
  }

  /**
   * Every user group the policy names anywhere: bindings, team members, team quotas. A VM's team
   * may be some other group; the gateway asks about that one when it meets it.
   */
  get namedGroups(): readonly string[] {
    const teamGroups = Object.values(this.document.teams).flatMap((t) => t.groups ?? []);
    const quotaGroups = Object.keys(this.document.quotas.teams).filter((k) => k.startsWith("S"));
    return [...new Set([...this.boundGroups, ...teamGroups, ...quotaGroups, ...this.approverGroups])];
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

  /** The widest scope the actor's roles grant for `command`, or undefined when none grants it. */
  scopeOf(actor: Actor, command: CommandId): Scope | undefined {
    let scope: Scope | undefined;
    for (const r of this.rolesOf(actor)) {
      const s = this.grants.get(r)?.get(command);
      if (s === "any") return "any";
      if (s === "own") scope = "own";
    }
    return scope;
  }

  /** Whether the actor's roles grant `command` at all (on some VM, for scoped commands). */
  can(actor: Actor, command: CommandId): boolean {
    return this.scopeOf(actor, command) !== undefined;
  }

  /** What the actor may run, in `help` order, each with its scope. */
  grantsOf(actor: Actor): Grant[] {
    return COMMAND_IDS.flatMap((command) => {
      const scope = this.scopeOf(actor, command);
      return scope === undefined ? [] : [{ command, scope }];
    });
  }

  /** What the actor may run, in `help` order. */
  allowedCommands(actor: Actor): CommandId[] {
    return this.grantsOf(actor).map((g) => g.command);
  }

  /** Throws IAAS_NOT_ALLOWED unless the actor's roles grant `command` (on some VM). */
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

  // ---- teams and scope -------------------------------------------------------------------

  /**
   * The teams the actor is in: the Slack user groups the gateway found them in (`actor.groups`)
   * and the policy's teams that list them or one of those groups.
   */
  teamsOf(actor: Actor): string[] {
    const groups = actor.groups ?? [];
    const named = Object.entries(this.document.teams)
      .filter(([, t]) => t.users?.includes(actor.userId) || t.groups?.some((g) => groups.includes(g)))
      .map(([name]) => name);
    return [...groups, ...named];
  }

  /** Whether `team` can be a VM's team: any user group id, or a team in `teams`. */
  isKnownTeam(team: string): boolean {
    return /^S[A-Z0-9]{2,20}$/.test(team) || Object.hasOwn(this.document.teams, team);
  }

  /** How the actor stands to the VM. */
  relationTo(actor: Actor, vm: VmOwnership): Relation {
    if (vm.owner === undefined && vm.team === undefined) return "unowned";
    if (vm.owner !== undefined && vm.owner === actor.userId) return "owner";
    if (vm.team !== undefined && this.teamsOf(actor).includes(vm.team)) return "team";
    return "other";
  }

  /**
   * Whether the actor may run `command` on this VM. A scoped grant reaches VMs the actor owns or
   * whose team they are in (`owner`: only VMs they own); an unowned VM only `:any` grants reach.
   * Commands that name no VM: whether they are granted at all.
   */
  mayActOn(actor: Actor, command: CommandId, vm: VmOwnership): boolean {
    const scope = this.scopeOf(actor, command);
    if (scope === undefined) return false;
    if (scope === "any" || !isScoped(command)) return true;
    const rel = this.relationTo(actor, vm);
    return rel === "owner" || (rel === "team" && command !== "owner");
  }

  /**
   * Throws IAAS_NOT_ALLOWED unless the actor may run `command` on this VM: first whether any role
   * grants it, then whose VM it is ("`web-01` belongs to <@UALICE>; you may not power it off").
   * `vm` must carry the owner and team as read from vCenter: a caller that could not read them
   * refuses rather than calling this with neither (an unread owner is not "no owner").
   */
  authorizeOn(actor: Actor, command: CommandId, vm: VmOwnership): void {
    this.authorize(actor, command);
    if (this.mayActOn(actor, command, vm)) return;
    const short = leafOf(vm.name);
    const verb = VERB[command] ?? `run \`${commandLabel(command)}\` on it`;
    const rel = this.relationTo(actor, vm);
    if (rel === "unowned") {
      throw new IaasError(
        "IAAS_NOT_ALLOWED",
        `\`${short}\` has no owner in IaaS, so only IT admins may ${verb} until it is adopted (an admin runs \`/iaas owner ${short} @user\`).`,
      );
    }
    const whose = vm.owner !== undefined ? `<@${vm.owner}>${vm.team !== undefined ? ` (${teamLabel(vm.team)})` : ""}` : teamLabel(vm.team!);
    const tail = command === "owner" && rel === "team" ? "only its owner or an IT admin may give it away" : "ask them or an IT admin";
    throw new IaasError("IAAS_NOT_ALLOWED", `\`${short}\` belongs to ${whose}; you may not ${verb}: ${tail}.`);
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

  /**
   * Throws IAAS_PROTECTED_VM when `command` is one of PROTECTED_COMMANDS and the VM is protected.
   * `via` words where the command came from. With `resolved`, the VM was looked up in vCenter:
   * when the policy protects folders and no inventory path came back, protection cannot be
   * decided, and the command is refused with a retryable IAAS_VCENTER_UNAVAILABLE (a guard that
   * cannot decide fails closed).
   */
  checkProtected(command: CommandId, vm: VmIdentity, opts: { via?: Actor["via"] | undefined; resolved?: boolean } = {}): void {
    if (!PROTECTED_COMMANDS.includes(command)) return;
    const why = this.protectionOf(vm.name, vm.path);
    const done = DONE[command] ?? commandLabel(command);
    if (why === undefined) {
      if (opts.resolved && this.protectsFolders && vm.path === undefined && !vm.name.startsWith("/")) {
        throw new IaasError(
          "IAAS_VCENTER_UNAVAILABLE",
          `Cannot tell whether \`${leafOf(vm.name)}\` is in a protected folder (its inventory path could not be read), so it was not ${done}. Try again in a minute.`,
        );
      }
      return;
    }
    const from = opts.via === "nats" ? "over NATS" : "from Slack";
    throw new IaasError("IAAS_PROTECTED_VM", `\`${leafOf(vm.name)}\` is protected by policy (${why}): it cannot be ${done} ${from}. Ask an IT admin.`);
  }

  // ---- sizes, limits, names, quotas ------------------------------------------------------

  get limits(): Limits {
    return this.document.limits;
  }

  get placement(): Placement {
    return this.document.placement;
  }

  /**
   * The limits in one vCenter (none named: `default`): its own (`vcenters.<id>.limits`) field by
   * field over the top-level ones.
   */
  limitsFor(vcenter: string | undefined): Limits {
    const own = this.vcenterPolicy(vcenter)?.limits;
    return own ? { ...this.document.limits, ...own } : this.document.limits;
  }

  /** Where new VMs go in one vCenter (none named: `default`): its own placement (`vcenters.<id>.placement`), else the top-level one. */
  placementFor(vcenter: string | undefined): Placement {
    return this.vcenterPolicy(vcenter)?.placement ?? this.document.placement;
  }

  /**
   * Throws IAAS_LIMIT_EXCEEDED unless a new VM of `size` fits the limits of `vcenter` (every size
   * fits the top-level limits; a vCenter's own may be smaller).
   */
  checkSizeIn(size: NamedSize, vcenter: string | undefined): void {
    const l = this.limitsFor(vcenter);
    const where = this.limitsWhere(vcenter);
    const over = [
      size.cpu > l.maxCpu ? `${size.cpu} vCPU (at most ${l.maxCpu})` : undefined,
      size.memoryGB > l.maxMemoryGB ? `${size.memoryGB} GB memory (at most ${l.maxMemoryGB} GB)` : undefined,
      size.diskGB > l.maxDiskGB ? `a ${size.diskGB} GB disk (at most ${l.maxDiskGB} GB)` : undefined,
    ].filter(Boolean);
    if (over.length > 0) throw new IaasError("IAAS_LIMIT_EXCEEDED", `Size \`${size.name}\` is more than the policy allows${where}: ${over.join(", ")}.`);
  }

  private vcenterPolicy(vcenter: string | undefined): VcenterPolicy | undefined {
    const id = vcenter ?? "default";
    return Object.hasOwn(this.document.vcenters, id) ? this.document.vcenters[id] : undefined;
  }

  /** ` in vCenter `x`` where that vCenter has limits of its own (a refusal names whose limits it met). */
  private limitsWhere(vcenter: string | undefined): string {
    return this.vcenterPolicy(vcenter)?.limits ? ` in vCenter \`${vcenter ?? "default"}\`` : "";
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
  checkResize(current: { cpu: number; memoryGB: number }, change: { cpu?: number | undefined; memoryGB?: number | undefined }, vcenter?: string): { cpu: number; memoryGB: number } {
    const { maxCpu, maxMemoryGB } = this.limitsFor(vcenter);
    const where = this.limitsWhere(vcenter);
    if (change.cpu === undefined && change.memoryGB === undefined) {
      throw new IaasError("IAAS_SYNTAX", "Say what to change: `cpu=N`, `memory=GB` or both.");
    }
    if (change.cpu !== undefined) {
      if (!Number.isInteger(change.cpu) || change.cpu < 1) {
        throw new IaasError("IAAS_SYNTAX", `\`cpu=${change.cpu}\` is not a valid number of vCPUs: use a whole number from 1 to ${maxCpu}.`);
      }
      if (change.cpu > maxCpu) {
        throw new IaasError("IAAS_LIMIT_EXCEEDED", `\`cpu=${change.cpu}\` is more than the policy allows${where}: at most ${maxCpu} vCPU.`);
      }
    }
    if (change.memoryGB !== undefined) {
      if (!(change.memoryGB > 0) || !Number.isInteger(change.memoryGB * 256)) {
        throw new IaasError("IAAS_SYNTAX", `\`memory=${change.memoryGB}\` is not a valid memory size: use GB, for example \`memory=8\` or \`memory=0.5\`.`);
      }
      if (change.memoryGB > maxMemoryGB) {
        throw new IaasError("IAAS_LIMIT_EXCEEDED", `\`memory=${change.memoryGB}\` is more than the policy allows${where}: at most ${maxMemoryGB} GB.`);
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

  /**
   * The limits on what one user's VMs, or one team's, may use in all: `quotas.users[id]`
   * (`quotas.teams[team]`) field by field over `perUser` (`perTeam`). A field left out: no limit.
   */
  quotaOf(kind: QuotaKind, id: string): QuotaLimits {
    const q = this.document.quotas;
    return kind === "user" ? { ...q.perUser, ...(q.users[id] ?? {}) } : { ...q.perTeam, ...(q.teams[id] ?? {}) };
  }

  /**
   * Throws IAAS_QUOTA_EXCEEDED when `request` on top of what is used goes over the owner's quota
   * or the team's, with the figures ("you use 9 of 10 VMs and 14 of 16 vCPU; this needs 1 more VM
   * and 2 more vCPU"). `user` and `team.used` count what exists and what other requests hold.
   */
  checkQuota(a: { actor: Actor; request: Usage; user: Usage; team?: { id: string; used: Usage } | undefined }): void {
    const over = (limits: QuotaLimits, used: Usage) =>
      QUOTA_FIELDS.filter((f) => limits[f] !== undefined && used[f] + a.request[f] > limits[f]! + 1e-9);
    const uses = (limits: QuotaLimits, used: Usage, fields: readonly QuotaField[]) =>
      fields.map((f) => `${round(used[f])} of ${limits[f]} ${QUOTA_UNITS[f](limits[f]!)}`).join(" and ");
    const needs = (fields: readonly QuotaField[]) => fields.map((f) => `${round(a.request[f])} more ${QUOTA_UNITS[f](a.request[f])}`).join(" and ");
    const userLimits = this.quotaOf("user", a.actor.userId);
    const userOver = over(userLimits, a.user);
    if (userOver.length) {
      throw new IaasError(
        "IAAS_QUOTA_EXCEEDED",
        `Over your quota: you use ${uses(userLimits, a.user, userOver)}; this needs ${needs(userOver)}. Delete a VM you no longer need, or ask an IT admin to raise your quota (\`/iaas quota\` shows it).`,
      );
    }
    if (a.team) {
      const teamLimits = this.quotaOf("team", a.team.id);
      const teamOver = over(teamLimits, a.team.used);
      if (teamOver.length) {
        throw new IaasError(
          "IAAS_QUOTA_EXCEEDED",
          `Over the quota of ${teamLabel(a.team.id)}: it uses ${uses(teamLimits, a.team.used, teamOver)}; this needs ${needs(teamOver)}. Ask an IT admin to raise the team's quota (\`/iaas quota\` shows it).`,
        );
      }
    }
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

  // ---- approvals -------------------------------------------------------------------------

  get approvalRules(): readonly ApprovalRule[] {
    return this.document.approvals.rules;
  }

  /** The user groups approval rules name as approvers: the gateway must be able to read their members. */
  get approverGroups(): readonly string[] {
    return [...new Set(this.document.approvals.rules.flatMap((r) => r.approvers.groups ?? []))];
  }

  /**
   * The first rule (in policy order) that the request meets, with why; undefined when it needs
   * no approval. Every condition a rule gives must hold; a condition the request cannot meet
   * (no size, no lease) does not.
   */
  approvalFor(f: ApprovalFacts): ApprovalMatch | undefined {
    for (const rule of this.document.approvals.rules) {
      if (!(rule.commands as readonly string[]).includes(f.command)) continue;
      const w = rule.when;
      const why: string[] = [];
      if (w.sizeApproval) {
        if (!f.size?.approval) continue;
        why.push(`size \`${f.size.name}\` needs an approval`);
      }
      if (w.cpuOver !== undefined) {
        if (!(f.cpu !== undefined && f.cpu > w.cpuOver)) continue;
        why.push(`more than ${w.cpuOver} vCPU`);
      }
      if (w.memoryGBOver !== undefined) {
        if (!(f.memoryGB !== undefined && f.memoryGB > w.memoryGBOver)) continue;
        why.push(`more than ${w.memoryGBOver} GB memory`);
      }
      if (w.leaseOverMax) {
        if (!(f.leaseMs !== undefined && f.leaseMs > this.document.leases.max)) continue;
        why.push(`a lease longer than the ${formatDuration(this.document.leases.max)} allowed`);
      }
      if (w.names) {
        const glob = f.vm === undefined ? undefined : matchesAny(w.names.map((g) => compileGlob(g, { caseInsensitive: true })), leafOf(f.vm));
        if (!glob) continue;
        why.push(`the name matches \`${glob.source}\``);
      }
      if (w.quotaOverrun) {
        if (!f.overQuota) continue;
        why.push("over quota");
      }
      return { rule, why: why.length ? why.join(", ") : `every \`${commandLabel(f.command)}\` needs an approval` };
    }
    return undefined;
  }

  /** Whether the actor is one of the rule's approvers (a user listed, in a group listed, or bound to a role listed). */
  isApprover(actor: Actor, rule: ApprovalRule): boolean {
    const a = rule.approvers;
    if (a.users?.includes(actor.userId)) return true;
    if (a.groups?.some((g) => actor.groups?.includes(g))) return true;
    const roles = this.rolesOf(actor);
    return a.roles?.some((r) => roles.includes(r)) ?? false;
  }

  /** The rule's approvers in words for Slack: `<@U1>, <!subteam^S1>, the admin role`. */
  describeApprovers(rule: ApprovalRule): string {
    const a = rule.approvers;
    const parts = [
      ...(a.users ?? []).map((u) => `<@${u}>`),
      ...(a.groups ?? []).map((g) => `<!subteam^${g}>`),
      ...(a.roles ?? []).map((r) => {
        const users = this.document.bindings.filter((b) => b.role === r).flatMap((b) => b.users ?? []);
        return users.length ? users.map((u) => `<@${u}>`).join(", ") : `anyone with the ${r} role`;
      }),
    ];
    return [...new Set(parts)].join(", ");
  }

  // ---- leases and snapshots ---------------------------------------------------------------

  /** Lease settings, durations in ms. */
  get leases(): Leases {
    return this.document.leases;
  }

  /** Snapshot settings, `maxAge` in ms. */
  get snapshots(): Snapshots {
    return this.document.snapshots;
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

/** How a refusal words the act: "you may not power it off". */
const VERB: Partial<Record<CommandId, string>> = {
  info: "see it",
  list: "see it",
  clone: "clone it",
  "power.on": "power it on",
  "power.off": "power it off",
  "power.reset": "reset it",
  "power.suspend": "suspend it",
  "power.shutdown": "shut it down",
  "power.reboot": "reboot it",
  resize: "resize it",
  delete: "delete it",
  owner: "give it another owner",
  "snapshot.list": "see its snapshots",
  "snapshot.create": "snapshot it",
  "snapshot.revert": "revert it to a snapshot",
  "snapshot.delete": "delete its snapshots",
  lease: "see its lease",
  "lease.extend": "extend its lease",
  "lease.set": "set its lease",
};

function bindingMatches(b: Binding, actor: Actor): boolean {
  if (b.everyone) return true;
  if (b.users?.includes(actor.userId)) return true;
  if (actor.channelId !== undefined && b.channels?.includes(actor.channelId)) return true;
  return actor.groups?.some((g) => b.groups?.includes(g)) ?? false;
}
