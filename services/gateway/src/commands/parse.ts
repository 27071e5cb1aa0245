import { CommandAreas, IaasError, NewVmNameSchema, SizeNameSchema, SnapshotNameSchema, parseDuration as parseLeaseDuration, SlackUserIdSchema, TeamIdSchema, VcenterIdSchema, VmRefSchema, formatIssues, type ErrorCode, type PowerAction, type VmRef } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";

/**
 * The `/iaas` grammar. Pure: text in, a typed command or a coded error out; no I/O, no Slack.
 *
 * Table-driven: each command is a verb plus a list of argument specs; usage lines and syntax
 * errors are derived from the same table, so a new command (create, clone, deploy, resize,
 * delete, list, info, ...) is one more entry in `Grammar` and one more member of `ParsedCommand`.
 * Verbs and keywords match exactly (case-insensitively); there is no prefix, substring or
 * "did you mean" routing: `pow off x` and `poweroff x` are unknown commands.
 */

export type ParsedCommand = (
  | { verb: "help"; topic?: Verb }
  | { verb: "list"; glob?: string; all?: true }
  | { verb: "info"; vm: VmRef }
  | { verb: "templates" }
  | { verb: "quota" }
  | { verb: "sizes" }
  | { verb: "create"; name: string; size?: string; team?: string; leaseMs?: number }
  | { verb: "clone"; source: VmRef; name: string; team?: string; leaseMs?: number }
  | { verb: "deploy"; template: VmRef; name: string; size?: string; team?: string; leaseMs?: number }
  | { verb: "power"; action: PowerAction; vm: VmRef }
  | { verb: "resize"; vm: VmRef; cpu?: number; memoryGB?: number }
  | { verb: "delete"; vm: VmRef }
  | { verb: "owner"; vm: VmRef; owner?: string; team?: string }
  /**
   * `lease <vm>` shows the lease; `set` a new lease of that length from now, or none (`null`);
   * `until` (`set 2027-01-31`): one that ends then (ISO 8601 UTC).
   */
  | { verb: "lease"; vm: VmRef; set?: number | null; until?: string }
  | { verb: "extend"; vm: VmRef; durationMs?: number; powerOn?: true }
  | { verb: "echo"; text?: string }
  | { verb: "audit"; vm?: VmRef }
  | { verb: "snapshot"; action: "list"; vm: VmRef }
  | { verb: "snapshot"; action: "create" | "revert"; vm: VmRef; name?: string }
  | { verb: "snapshot"; action: "delete"; vm: VmRef; name: string }
  | { verb: "approvals" }
  | { verb: "remediation"; action: "status" }
  | { verb: "remediation"; action: "resume"; vcenter?: string }
  | { verb: "remediation"; action: "pause"; durationMs: number; reason?: string; vcenter?: string }
) & {
  /**
   * `vc=<id>`: the vCenter the command acts in (for `list`, the one it lists; for `remediation`,
   * the one paused or resumed). Only its shape is checked here; whether the gateway knows that
   * vCenter is checked before anything is asked or published. Unset: the default vCenter
   * (`list`: every vCenter; `remediation`: every vCenter).
   */
  vcenter?: string;
};
export type Verb = ParsedCommand["verb"];

/** A parse failure: a catalogue code, a one-line message, and the usage of the command it concerns. */
export class CommandParseError extends IaasError {
  constructor(
    code: ErrorCode,
    message: string,
    /** Usage lines of the command concerned (without `/iaas`); empty for an unknown verb. */
    readonly usage: readonly string[] = [],
    /** The command concerned; undefined for an unknown verb. */
    readonly verb?: Verb,
  ) {
    super(code, message);
    this.name = "CommandParseError";
  }
}

export type ParseResult = { success: true; data: ParsedCommand } | { success: false; error: CommandParseError };

// ---------------------------------------------------------------------------------------------
// Argument specs

interface ArgSpec<T> {
  /** How the argument shows in usage lines: `<vm>`, `on|off`, `[command]`. */
  usage: string;
  /** What is missing, for "`power off` needs a VM name". */
  describe: string;
  optional: boolean;
  /** Added to "unexpected argument" errors when this is the last argument. */
  extraHint?: string;
  /** Parses one token; throws a CommandParseError (without usage, added by the caller). */
  parse(token: string): T;
  /**
   * Set on the last argument only: it takes every remaining token (`[cpu=N] [memory=GB]`,
   * `[text]`) instead of one. `parse` is then not used.
   */
  parseRest?(tokens: readonly string[], seen: readonly string[]): T;
}

type ArgValues<A extends readonly ArgSpec<unknown>[]> = {
  [K in keyof A]: A[K] extends ArgSpec<infer T> ? (A[K]["optional"] extends true ? T | undefined : T) : never;
};

function listWords(words: readonly string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
}

/** Text a user typed, as it may be quoted back: at most 60 characters, as inline code. */
export function quote(token: string): string {
  return code([...token].length > 60 ? `${[...token].slice(0, 59).join("")}…` : token);
}

/**
 * A `list` pattern longer than this is refused. Matching costs at most (pattern + 1) × (name + 1)
 * steps per VM (@iaas/policy's glob matcher), so the cap bounds the work a `list` can ask for.
 */
export const MAX_LIST_GLOB_LENGTH = 100;

/** A whole command longer than this is refused before it is looked at. */
export const MAX_COMMAND_LENGTH = 2000;

/**
 * How Slack sends a user and a user group when the slash command escapes names (the manifest's
 * `should_escape: true`): `<@U012ABC|alice>` and `<!subteam^S012ABC|@platform>`; the label after
 * `|` may be missing. The grammar takes the ids and ignores the labels.
 */
const USER_MENTION = /^<@([^|>]*)(?:\|[^>]*)?>$/;
const GROUP_MENTION = /^<!subteam\^([^|>]*)(?:\|[^>]*)?>$/;
/** A policy team by name, typed bare or with an `@` Slack did not turn into a group (`@platform`). */
const TEAM_NAME = /^@?([a-z][a-z0-9_-]{0,31})$/;

/** Who a VM is given to: a Slack user (its owner) or a team (a user group id or a policy team name). */
export type Party = { kind: "user"; id: string } | { kind: "team"; id: string };

/** A user mention, a user group mention or a policy team name; undefined for anything else. Throws for a mention with a malformed id. */
function partyOf(token: string): Party | undefined {
  const user = USER_MENTION.exec(token);
  if (user) {
    if (!SlackUserIdSchema.safeParse(user[1]).success) throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(token)} is not a Slack user: mention a person as \`@name\`.`);
    return { kind: "user", id: user[1]! };
  }
  const group = GROUP_MENTION.exec(token);
  if (group) {
    if (!/^S[A-Z0-9]{2,20}$/.test(group[1]!)) throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(token)} is not a Slack user group.`);
    return { kind: "team", id: group[1]! };
  }
  const name = TEAM_NAME.exec(token);
  if (name && TeamIdSchema.safeParse(name[1]).success) return { kind: "team", id: name[1]! };
  return undefined;
}

const arg = {
  /** One of a fixed set of words, matched exactly (case-insensitively). */
  keyword<const W extends string>(what: string, words: readonly W[]): ArgSpec<W> & { optional: false } {
    return {
      usage: words.join("|"),
      describe: `${what} (${listWords(words)})`,
      optional: false,
      parse(token) {
        const w = words.find((x) => x === token.toLowerCase());
        if (w === undefined) throw new CommandParseError("IAAS_SYNTAX", `${quote(token)} is not ${what}: use ${listWords(words)}.`);
        return w;
      },
    };
  },
  /** `<vm>`: an exact VM name or an inventory path starting with `/`; never a wildcard. */
  vm(usage = "<vm>", describe = "a VM name"): ArgSpec<VmRef> & { optional: false } {
    return {
      usage,
      describe,
      optional: false,
      extraHint: "VM names cannot contain spaces",
      parse(token) {
        const r = VmRefSchema.safeParse(token);
        if (!r.success) {
          throw new CommandParseError("IAAS_BAD_VM_NAME", `${quote(token)} is not a valid VM name (${formatIssues(r.error)}).`);
        }
        return r.data;
      },
    };
  },
  /** `<name>` of a new VM: only its shape here; the policy's naming rule is applied by the handler. */
  newName(): ArgSpec<string> & { optional: false } {
    return {
      usage: "<name>",
      describe: "a name for the new VM",
      optional: false,
      extraHint: "VM names cannot contain spaces",
      parse(token) {
        const r = NewVmNameSchema.safeParse(token);
        if (!r.success) throw new CommandParseError("IAAS_NAME_NOT_ALLOWED", `${quote(token)} cannot be used as a VM name (${formatIssues(r.error)}).`);
        return r.data;
      },
    };
  },
  /** `[size]`: a size name; whether the policy has it is the handler's business. */
  size(): ArgSpec<string> & { optional: false } {
    return {
      usage: "size",
      describe: "a size",
      optional: false,
      extraHint: "see `/iaas sizes`",
      parse(token) {
        const r = SizeNameSchema.safeParse(token);
        if (!r.success) throw new CommandParseError("IAAS_UNKNOWN_SIZE", `${quote(token)} is not a size name; see \`/iaas sizes\`.`);
        return r.data;
      },
    };
  },
  /** `[glob]` of `list`: the one place `*` and `?` mean something, and only as a filter. */
  glob(): ArgSpec<string> & { optional: false } {
    return {
      usage: "glob",
      describe: "a name pattern",
      optional: false,
      parse(token) {
        const length = [...token].length;
        if (length > MAX_LIST_GLOB_LENGTH) {
          throw new CommandParseError("IAAS_SYNTAX", `That pattern is ${length} characters long; a pattern may have at most ${MAX_LIST_GLOB_LENGTH} (VM names have at most 80).`);
        }
        if (/[\u0000-\u001f\u007f]/.test(token)) {
          throw new CommandParseError("IAAS_SYNTAX", `${quote(token)} is not a name pattern: use letters, digits and \`*\` or \`?\`, for example \`web-*\`.`);
        }
        return token;
      },
    };
  },
  /** `[cpu=N] [memory=GB]`: absolute targets, in any order, at least one. */
  resizeOptions(): ArgSpec<{ cpu?: number; memoryGB?: number }> & { optional: false } {
    return {
      usage: "[cpu=N] [memory=GB]",
      describe: "`cpu=N`, `memory=GB` or both",
      optional: false,
      parse: () => {
        throw new Error("resizeOptions takes the remaining tokens");
      },
      parseRest(tokens, seen) {
        if (tokens.length === 0) throw new CommandParseError("IAAS_SYNTAX", `${quote(seen.join(" "))} needs \`cpu=N\`, \`memory=GB\` or both.`);
        const out: { cpu?: number; memoryGB?: number } = {};
        for (const t of tokens) {
          const m = /^([^=]+)=(.*)$/.exec(t);
          const key = m?.[1]?.toLowerCase();
          const value = m?.[2] ?? "";
          if (key === "cpu" || key === "cpus" || key === "vcpu") {
            if (out.cpu !== undefined) throw new CommandParseError("IAAS_SYNTAX", "`cpu=` is given twice.");
            if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1) throw new CommandParseError("IAAS_SYNTAX", `${quote(t)}: the number of vCPUs must be a whole number of at least 1, for example \`cpu=2\`.`);
            out.cpu = Number(value);
          } else if (key === "memory" || key === "mem") {
            if (out.memoryGB !== undefined) throw new CommandParseError("IAAS_SYNTAX", "`memory=` is given twice.");
            const mm = /^([0-9]{1,6}(?:\.[0-9]{1,3})?)(?:gb|g)?$/i.exec(value);
            if (!mm || !(Number(mm[1]) > 0)) throw new CommandParseError("IAAS_SYNTAX", `${quote(t)}: memory is in GB, for example \`memory=8\` or \`memory=0.5\`.`);
            out.memoryGB = Number(mm[1]);
          } else {
            throw new CommandParseError("IAAS_SYNTAX", `${quote(t)} is not a resize option: use \`cpu=N\` and/or \`memory=GB\`.`);
          }
        }
        return out;
      },
    };
  },
  /** `<@user|@team>` of `owner`: a user mention (the new owner), a user group mention or a policy team name (the new team). */
  party(): ArgSpec<Party> & { optional: false } {
    return {
      usage: "<@user|@team>",
      describe: "a user or a team to give the VM to (`@alice`, `@platform`)",
      optional: false,
      parse(token) {
        const p = partyOf(token);
        if (p === undefined) {
          throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(token)} is not a user or a team: mention a person (\`@alice\`) or a Slack user group (\`@platform\`), or name a team of the policy.`);
        }
        return p;
      },
    };
  },
  /** `[all] [glob]` of `list`: `all` (every VM, for those the policy lets see any VM), then a pattern. */
  listOptions(): ArgSpec<{ all?: true; glob?: string }> & { optional: true } {
    const glob = arg.glob();
    return {
      usage: "[all] [glob]",
      describe: "`all` or a name pattern",
      optional: true,
      parse: () => {
        throw new Error("listOptions takes the remaining tokens");
      },
      parseRest(tokens, seen) {
        const [first, ...rest] = tokens;
        const all = first !== undefined && first.toLowerCase() === "all";
        const pattern = all ? rest[0] : first;
        const extra = all ? rest[1] : rest[0];
        if (extra !== undefined) throw new CommandParseError("IAAS_SYNTAX", `Unexpected ${quote(extra)} after ${quote([...seen, ...tokens.slice(0, all ? 2 : 1)].join(" "))}; \`list\` takes \`all\` and one pattern.`);
        return { ...(all ? { all: true as const } : {}), ...(pattern !== undefined ? { glob: glob.parse(pattern) } : {}) };
      },
    };
  },
  /** `[text]` of `echo`: everything that follows, as typed (tokens joined by one space). */
  text(): ArgSpec<string> & { optional: false } {
    return {
      usage: "text",
      describe: "text",
      optional: false,
      parse: (t) => t,
      parseRest: (tokens) => tokens.join(" "),
    };
  },
  /**
   * `[vc=<vcenter>] [duration] [reason]` of `remediation pause`: the vCenter it covers (every one
   * when not given), `30m`, `2h`, `1d` (1h when not given, at most 7d), then free text.
   */
  pauseOptions(): ArgSpec<{ durationMs?: number; reason?: string; vcenter?: string }> & { optional: true } {
    return {
      usage: "[vc=<vcenter>] [duration] [reason]",
      describe: "a vCenter, a duration (`30m`, `2h`, `1d`) and a reason",
      optional: true,
      parse: () => {
        throw new Error("pauseOptions takes the remaining tokens");
      },
      parseRest(all) {
        let vcenter: string | undefined;
        let tokens = all;
        const vc = /^vc=(.*)$/i.exec(all[0] ?? "");
        if (vc) {
          vcenter = vc[1]!.toLowerCase();
          if (!VcenterIdSchema.safeParse(vcenter).success) throw new CommandParseError("IAAS_SYNTAX", "`vc=` takes a vCenter's id: 1 to 32 of a-z, 0-9 and -.");
          tokens = all.slice(1);
        }
        const at = vcenter !== undefined ? { vcenter } : {};
        if (tokens.length === 0) return at;
        const [first, ...rest] = tokens;
        const d = first === undefined ? undefined : parseDuration(first);
        const words = d === undefined ? tokens : rest;
        const reason = words.join(" ");
        if ([...reason].length > MAX_PAUSE_REASON) throw new CommandParseError("IAAS_SYNTAX", `A pause reason may have at most ${MAX_PAUSE_REASON} characters.`);
        if (/[\u0000-\u001f\u007f]/.test(reason)) throw new CommandParseError("IAAS_SYNTAX", "A pause reason cannot contain control characters.");
        return { ...at, ...(d !== undefined ? { durationMs: d } : {}), ...(reason !== "" ? { reason } : {}) };
      },
    };
  },
  /**
   * `[name]` of `snapshot`: every remaining token, joined by one space (a snapshot name may have
   * spaces, as in the vSphere Client), shaped as vSphere takes it.
   */
  snapshotName(): ArgSpec<string> & { optional: true } {
    return {
      usage: "[name]",
      describe: "a snapshot name",
      optional: true,
      parse: () => {
        throw new Error("snapshotName takes the remaining tokens");
      },
      parseRest(tokens) {
        const name = tokens.join(" ");
        const r = SnapshotNameSchema.safeParse(name);
        if (!r.success) throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(name)} cannot be a snapshot name (${formatIssues(r.error)}).`);
        return r.data;
      },
    };
  },
  optional<T>(spec: ArgSpec<T>, usage: string): ArgSpec<T> & { optional: true } {
    return { ...spec, usage: `[${usage}]`, optional: true };
  },
};

// ---------------------------------------------------------------------------------------------
// The table

/** `key=value` options a command takes after its arguments, in any order, each at most once. */
interface CommandOptions {
  team?: string;
  lease?: number;
  power?: "on";
}

interface CommandGrammar<V extends Verb, A extends readonly ArgSpec<unknown>[]> {
  verb: V;
  summary: string;
  args: A;
  /** Takes `vc=<id>` (the vCenter), anywhere after the verb: every verb that names VMs. */
  vcenter?: true;
  /** The `key=` options it takes, by key (only `team` so far). */
  options?: { readonly [K in keyof CommandOptions]?: ArgSpec<CommandOptions[K]> };
  build(values: ArgValues<A>, options: CommandOptions): Extract<ParsedCommand, { verb: V }>;
}

/** A table row with its argument types erased (checked once, in `command`). */
export interface GrammarEntry<V extends Verb = Verb> {
  verb: V;
  summary: string;
  args: readonly ArgSpec<unknown>[];
  vcenter?: true;
  options?: { readonly [K in keyof CommandOptions]?: ArgSpec<CommandOptions[K]> };
  build(values: readonly unknown[], options: CommandOptions): ParsedCommand;
}

function command<V extends Verb, const A extends readonly ArgSpec<unknown>[]>(g: CommandGrammar<V, A>): GrammarEntry<V> {
  // `parseArgs` fills `values` spec by spec, so they have the tuple type `build` expects.
  return g as unknown as GrammarEntry<V>;
}

const helpTopic: ArgSpec<Verb> = {
  usage: "command",
  describe: "a command",
  optional: false,
  parse(token) {
    const g = lookup(token);
    if (!g) throw new CommandParseError("IAAS_UNKNOWN_COMMAND", `There is no command ${quote(token)}. Run \`/iaas help\` to see the commands.`);
    return g.verb;
  },
};


/**
 * `team=<@team>` of create, clone and deploy, after the other arguments: a Slack user group
 * mention or a policy team name (whether the policy knows that team is the verb's precheck).
 * A person is not a team: a user mention is refused, pointing to `owner`.
 */
const teamOption: ArgSpec<string> = {
  usage: "[team=@team]",
  describe: "a team",
  optional: true,
  parse(token) {
    const value = token.slice(token.indexOf("=") + 1);
    if (value === "") throw new CommandParseError("IAAS_INVALID_ARGUMENT", "`team=` needs a team: a Slack user group (`team=@platform`) or a team of the policy.");
    const p = partyOf(value);
    if (p?.kind === "user") {
      throw new CommandParseError("IAAS_INVALID_ARGUMENT", `\`team=\` takes a team, and ${quote(value)} is a person: mention a Slack user group (\`team=@platform\`) or name a team of the policy. A VM is yours when you make it; \`/iaas owner\` gives it to someone else.`);
    }
    if (p === undefined) throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(token)} does not name a team: mention a Slack user group (\`team=@platform\`) or name a team of the policy.`);
    return p.id;
  },
};

/** A lease's length as typed (`7d`, `12h`, `30m`): the shared duration rule, refused in words. */
function leaseDuration(token: string, what: string): number {
  const ms = parseLeaseDuration(token);
  if (typeof ms === "string") throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${what}: ${ms}.`);
  return ms;
}

/** `lease=<duration>` of create, clone and deploy, after the other arguments. */
const leaseOption: ArgSpec<number> = {
  usage: "[lease=7d]",
  describe: "a lease",
  optional: true,
  parse: (token) => leaseDuration(token.slice(token.indexOf("=") + 1), `\`${token.slice(0, 40)}\``),
};

/** `power=on` of `extend`: power the VM on as well (after its lease's end powered it off). */
const powerOption: ArgSpec<"on"> = {
  usage: "[power=on]",
  describe: "power=on",
  optional: true,
  parse(token) {
    if (token.slice(token.indexOf("=") + 1).toLowerCase() !== "on") throw new CommandParseError("IAAS_SYNTAX", `${quote(token)}: \`extend\` takes only \`power=on\` (power the VM on as well).`);
    return "on";
  },
};

/** `[duration]` of `extend`. */
const durationArg: ArgSpec<number> = {
  usage: "duration",
  describe: "a duration (`30d`, `12h`)",
  optional: false,
  parse: (token) => leaseDuration(token, quote(token)),
};

/** `2027-01-31` (midnight UTC starting that day) or `2027-01-31T18:00Z` (a time with its zone): a lease's end. */
const LEASE_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2}))?$/i;

/** The end a `lease set` date names, as ISO 8601 UTC; undefined when the token is not a date. */
function leaseDate(token: string): string | undefined {
  const m = LEASE_DATE.exec(token);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  const ms = Date.parse(m[4] === undefined ? `${m[1]}-${m[2]}-${m[3]}T00:00:00Z` : token.toUpperCase());
  // Date.UTC rolls 2027-02-31 over to March: the day must read back as typed.
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || Number.isNaN(ms)) {
    throw new CommandParseError("IAAS_INVALID_ARGUMENT", `${quote(token)} is not a date: give one such as \`2027-01-31\` or \`2027-01-31T18:00Z\`.`);
  }
  return new Date(ms).toISOString();
}

const leaseSetArg: ArgSpec<number | null | { until: string }> = {
  usage: "[set <duration|date>|none]",
  describe: "`set <duration|date>` or `none`",
  optional: true,
  parse: () => {
    throw new Error("leaseSetArg takes the remaining tokens");
  },
  parseRest(tokens) {
    const [first, second, extra] = tokens;
    const w = first?.toLowerCase();
    if (w === "none" && second === undefined) return null;
    if (w === "set" && second !== undefined && extra === undefined) {
      const until = leaseDate(second);
      return until !== undefined ? { until } : leaseDuration(second, quote(second));
    }
    throw new CommandParseError("IAAS_SYNTAX", "After the VM, `lease` takes `set <duration>` (for example `set 30d`), `set <date>` (`set 2027-01-31`) or `none`.");
  },
};

const POWER_ACTIONS = CommandAreas.power;

/** How long `remediation pause` lasts when no duration is given, and at most. */
export const DEFAULT_PAUSE_MS = 60 * 60 * 1000;
export const MAX_PAUSE_MS = 7 * 24 * 60 * 60 * 1000;
/** A pause reason longer than this is refused. */
export const MAX_PAUSE_REASON = 300;

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `30m`, `2h`, `1d`: a pause's length in ms. Undefined for a token that is not shaped like a
 * duration (it starts the reason); throws for one that is (digits first) but is not valid.
 */
function parseDuration(token: string): number | undefined {
  if (!/^[0-9]/.test(token)) return undefined;
  const m = /^([0-9]{1,5})([mhd])$/i.exec(token);
  if (!m) throw new CommandParseError("IAAS_SYNTAX", `${quote(token)} is not a duration: use minutes, hours or days, for example \`30m\`, \`2h\` or \`1d\`.`);
  const ms = Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]!;
  if (ms < 60_000) throw new CommandParseError("IAAS_SYNTAX", "A pause lasts at least one minute.");
  if (ms > MAX_PAUSE_MS) throw new CommandParseError("IAAS_SYNTAX", `${quote(token)} is too long: a pause lasts at most 7 days (\`7d\`).`);
  return ms;
}

/** Every command, in the order `help` lists them. Keyed by verb, so a verb without grammar does not compile. */
export const Grammar: { readonly [V in Verb]: GrammarEntry<V> } = {
  help: command({
    verb: "help",
    summary: "Show the commands, or how to use one of them.",
    args: [arg.optional(helpTopic, "command")],
    build: ([topic]) => (topic === undefined ? { verb: "help" } : { verb: "help", topic }),
  }),
  list: command({
    verb: "list",
    vcenter: true,
    summary: "List VMs with their power state, CPU and memory; a pattern such as `web-*` narrows the list, `all` lists every VM, not only yours.",
    args: [arg.listOptions()],
    build: ([o]) => ({ verb: "list", ...o }),
  }),
  info: command({
    verb: "info",
    vcenter: true,
    summary: "Everything about one VM: power, CPU, memory, disks, host, guest OS, IP, tools, owner, hot-add.",
    args: [arg.vm()],
    build: ([vm]) => ({ verb: "info", vm }),
  }),
  templates: command({
    verb: "templates",
    vcenter: true,
    summary: "The templates you can deploy.",
    args: [],
    build: () => ({ verb: "templates" }),
  }),
  quota: command({
    verb: "quota",
    summary: "What your VMs use of your quota (VMs, vCPU, memory, disk), and your teams'.",
    args: [],
    build: () => ({ verb: "quota" }),
  }),
  sizes: command({
    verb: "sizes",
    summary: "The VM sizes and limits of the policy.",
    args: [],
    build: () => ({ verb: "sizes" }),
  }),
  create: command({
    verb: "create",
    vcenter: true,
    summary: "Create a new, empty VM of a size (the default size when none is given); `team=` gives it to a team as well.",
    args: [arg.newName(), arg.optional(arg.size(), "size")],
    options: { team: teamOption, lease: leaseOption },
    build: ([name, size], { team, lease }) => ({ verb: "create", name, ...(size !== undefined ? { size } : {}), ...(team !== undefined ? { team } : {}), ...(lease !== undefined ? { leaseMs: lease } : {}) }),
  }),
  clone: command({
    verb: "clone",
    vcenter: true,
    summary: "Make a full copy of a VM under a new name.",
    args: [arg.vm("<source-vm>", "the VM to clone"), arg.newName()],
    options: { team: teamOption, lease: leaseOption },
    build: ([source, name], { team, lease }) => ({ verb: "clone", source, name, ...(team !== undefined ? { team } : {}), ...(lease !== undefined ? { leaseMs: lease } : {}) }),
  }),
  deploy: command({
    verb: "deploy",
    vcenter: true,
    summary: "Make a new VM from a template, of a size (the default size when none is given).",
    args: [arg.vm("<template>", "a template name"), arg.newName(), arg.optional(arg.size(), "size")],
    options: { team: teamOption, lease: leaseOption },
    build: ([template, name, size], { team, lease }) => ({ verb: "deploy", template, name, ...(size !== undefined ? { size } : {}), ...(team !== undefined ? { team } : {}), ...(lease !== undefined ? { leaseMs: lease } : {}) }),
  }),
  power: command({
    verb: "power",
    vcenter: true,
    summary: "Power a VM on or off, reset or suspend it, or shut down or reboot its guest OS (needs VMware Tools).",
    args: [arg.keyword("a power action", POWER_ACTIONS), arg.vm()],
    build: ([action, vm]) => ({ verb: "power", action, vm }),
  }),
  resize: command({
    verb: "resize",
    vcenter: true,
    summary: "Set a VM's vCPUs and/or memory (GB), within the policy's limits; a running VM needs hot-add.",
    args: [arg.vm(), arg.resizeOptions()],
    build: ([vm, o]) => ({ verb: "resize", vm, ...(o.cpu !== undefined ? { cpu: o.cpu } : {}), ...(o.memoryGB !== undefined ? { memoryGB: o.memoryGB } : {}) }),
  }),
  delete: command({
    verb: "delete",
    vcenter: true,
    summary: "Delete a VM (after you confirm).",
    args: [arg.vm()],
    build: ([vm]) => ({ verb: "delete", vm }),
  }),
  owner: command({
    verb: "owner",
    vcenter: true,
    summary: "Give a VM to a person (its new owner) or to a team; adopts a VM nobody owns (IT admins).",
    args: [arg.vm(), arg.party()],
    build: ([vm, to]) => (to.kind === "user" ? { verb: "owner", vm, owner: to.id } : { verb: "owner", vm, team: to.id }),
  }),
  snapshot: command({
    verb: "snapshot",
    vcenter: true,
    summary: "Take a snapshot of a VM (`create`, named by the time unless you name it), `list` its snapshots, `revert` to one (the current one by default, after you confirm), or `delete` one (its children are kept).",
    args: [arg.keyword("a snapshot action", ["create", "list", "revert", "delete"] as const), arg.vm(), arg.snapshotName()],
    build: ([action, vm, name]) => {
      if (action === "list") {
        if (name !== undefined) throw new CommandParseError("IAAS_SYNTAX", `\`snapshot list\` takes only the VM; unexpected ${quote(name)}.`);
        return { verb: "snapshot", action, vm };
      }
      if (action === "delete") {
        if (name === undefined) throw new CommandParseError("IAAS_SYNTAX", `${quote(`snapshot delete ${vm}`)} needs the name of the snapshot to delete (\`/iaas snapshot list ${vm}\` shows them).`);
        return { verb: "snapshot", action, vm, name };
      }
      return { verb: "snapshot", action, vm, ...(name !== undefined ? { name } : {}) };
    },
  }),
  lease: command({
    verb: "lease",
    vcenter: true,
    summary:
      "A VM's lease: when it ends, the time left and what happens then. `set 30d` or `set 2027-01-31` sets it (its owner and team up to the policy's max, as `extend`; IT admins any), `none` removes it (IT admins).",
    args: [arg.vm(), leaseSetArg],
    build: ([vm, set]) => (set === undefined ? { verb: "lease", vm } : set !== null && typeof set === "object" ? { verb: "lease", vm, until: set.until } : { verb: "lease", vm, set }),
  }),
  extend: command({
    verb: "extend",
    vcenter: true,
    summary: "Extend a VM's lease to a duration from now (the policy's default when none is given); `power=on` powers it on as well.",
    args: [arg.vm(), arg.optional(durationArg, "duration")],
    options: { power: powerOption },
    build: ([vm, durationMs], { power }) => ({ verb: "extend", vm, ...(durationMs !== undefined ? { durationMs } : {}), ...(power ? { powerOn: true as const } : {}) }),
  }),
  echo: command({
    verb: "echo",
    summary: "Show how a command is parsed and who you are to the policy.",
    args: [arg.optional(arg.text(), "text")],
    build: ([text]) => (text === undefined || text === "" ? { verb: "echo" } : { verb: "echo", text }),
  }),
  audit: command({
    verb: "audit",
    summary: "The latest actions (who, what, when, result), for one VM or all.",
    args: [arg.optional(arg.vm(), "vm")],
    build: ([vm]) => (vm === undefined ? { verb: "audit" } : { verb: "audit", vm }),
  }),
  approvals: command({
    verb: "approvals",
    summary: "The requests waiting for an approval: those you asked for, and those you may approve or reject (with the buttons).",
    args: [],
    build: () => ({ verb: "approvals" }),
  }),
  remediation: command({
    verb: "remediation",
    summary:
      "Pause automatic remediation for a maintenance window (`pause 2h reason`, 1h by default, at most 7d; `pause vc=<vcenter> ...` for one vCenter), `resume` it (`resume vc=<vcenter>`), or see its `status` (IT admins).",
    args: [arg.keyword("a remediation action", ["pause", "resume", "status"] as const), arg.pauseOptions()],
    build: ([action, o]) => {
      const at = o?.vcenter !== undefined ? { vcenter: o.vcenter } : {};
      if (action === "pause") return { verb: "remediation", action, durationMs: o?.durationMs ?? DEFAULT_PAUSE_MS, ...(o?.reason !== undefined ? { reason: o.reason } : {}), ...at };
      if (action === "resume" && o !== undefined && o.durationMs === undefined && o.reason === undefined) return { verb: "remediation", action, ...at };
      if (o !== undefined) throw new CommandParseError("IAAS_SYNTAX", `\`remediation ${action}\` takes ${action === "resume" ? "only `vc=<vcenter>`" : "nothing more"}.`);
      return { verb: "remediation", action };
    },
  }),
};

/** The verbs in listing order. */
export const Verbs = Object.keys(Grammar) as Verb[];

function lookup(word: string): GrammarEntry | undefined {
  const w = word.toLowerCase();
  return Object.hasOwn(Grammar, w) ? Grammar[w as Verb] : undefined;
}

/** Usage lines of a command, without the `/iaas` prefix: `power on|off|reset|suspend|shutdown|reboot <vm>`. */
export function usageOf(verb: Verb): string[] {
  const g: GrammarEntry = Grammar[verb];
  return [[g.verb, ...g.args.map((a) => a.usage), ...Object.values(g.options ?? {}).map((o) => o.usage)].join(" ")];
}

/** Whether a verb takes `vc=<name>` (it names VMs: power, info, list, create, …). */
export function takesVcenter(verb: Verb): boolean {
  return Grammar[verb].vcenter === true;
}

export function summaryOf(verb: Verb): string {
  return Grammar[verb].summary;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Splits on any run of whitespace (spaces, tabs, newlines, no-break spaces) and undoes the
 * three HTML entities Slack escapes in slash command text (`&`, `<`, `>`), so a VM named
 * `a&b` arrives as typed. https://api.slack.com/reference/surfaces/formatting#escaping
 */
export function tokenize(text: string): string[] {
  // A `<…>` span is Slack's markup (a typed `<` arrives as `&lt;`): one token even if its label has spaces.
  return (text.match(/(?:<[^<>]*>|[^\s<]|<)+/gu) ?? []).map((t) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"));
}

/** The refusal of a command `length` characters long (more than MAX_COMMAND_LENGTH). */
export function commandTooLong(length: number): CommandParseError {
  return new CommandParseError("IAAS_SYNTAX", `That command is ${length} characters long; a command may have at most ${MAX_COMMAND_LENGTH}.`);
}

/** Parses the text after `/iaas`. Empty text is `help`. */
export function parseCommand(text: string): ParseResult {
  const length = [...text].length;
  if (length > MAX_COMMAND_LENGTH) {
    return fail(commandTooLong(length));
  }
  const tokens = tokenize(text);
  const [word, ...rest] = tokens;
  if (word === undefined) return { success: true, data: { verb: "help" } };
  const g = lookup(word);
  if (!g) {
    return fail(new CommandParseError("IAAS_UNKNOWN_COMMAND", `Unknown command ${quote(word)}. Run \`/iaas help\` to see the commands.`));
  }
  try {
    return { success: true, data: parseArgs(g, rest) };
  } catch (err) {
    if (!(err instanceof CommandParseError)) throw err;
    return fail(new CommandParseError(err.code, err.message, usageOf(g.verb), g.verb));
  }
}

function parseArgs(g: GrammarEntry, all: string[]): ParsedCommand {
  const { tokens: rest, vcenter } = takeVcenter(g, all);
  const cmd = parseRest(g, rest);
  return vcenter === undefined ? cmd : { ...cmd, vcenter };
}

/** Takes `vc=<id>` out of the tokens of a verb that has it, wherever it stands; at most once. */
function takeVcenter(g: GrammarEntry, tokens: string[]): { tokens: string[]; vcenter?: string } {
  if (!g.vcenter) return { tokens };
  let vcenter: string | undefined;
  const rest: string[] = [];
  for (const t of tokens) {
    if (!/^vc=/i.test(t)) {
      rest.push(t);
      continue;
    }
    if (vcenter !== undefined) throw new CommandParseError("IAAS_SYNTAX", "`vc=` is given twice.");
    const value = t.slice(3).toLowerCase();
    // A vCenter id (`default` or an id of VCENTERS), as vcenter-proxy names them.
    if (!VcenterIdSchema.safeParse(value).success) throw new CommandParseError("IAAS_UNKNOWN_VCENTER", `${quote(t)} does not name a vCenter: use \`vc=<name>\` with a vCenter's id (1-32 of a-z 0-9 -), for example \`vc=default\`.`);
    vcenter = value;
  }
  return { tokens: rest, ...(vcenter !== undefined ? { vcenter } : {}) };
}

function parseRest(g: GrammarEntry, all: string[]): ParsedCommand {
  const { tokens, options } = takeOptions(g, all);
  const specs = g.args;
  const values: unknown[] = [];
  const seen: string[] = [g.verb];
  let consumed = 0;
  specs.forEach((spec, i) => {
    if (spec.parseRest) {
      const rest = tokens.slice(i);
      consumed = tokens.length;
      if (rest.length === 0 && spec.optional) {
        values.push(undefined);
        return;
      }
      values.push(spec.parseRest(rest, seen));
      return;
    }
    consumed = i + 1;
    const token = tokens[i];
    if (token === undefined) {
      if (!spec.optional) throw new CommandParseError("IAAS_SYNTAX", `${quote(seen.join(" "))} needs ${spec.describe}.`);
      values.push(undefined);
      return;
    }
    values.push(spec.parse(token));
    seen.push(token);
  });
  const extra = tokens[Math.max(consumed, specs.length)];
  if (extra !== undefined) {
    const hint = specs[specs.length - 1]?.extraHint;
    throw new CommandParseError("IAAS_SYNTAX", `Unexpected ${quote(extra)} after ${quote(seen.join(" "))}${hint ? `; ${hint}` : ""}.`);
  }
  return g.build(values, options);
}

/** Takes a command's `key=value` options out of its tokens, wherever they stand; each key at most once. */
function takeOptions(g: GrammarEntry, tokens: string[]): { tokens: string[]; options: CommandOptions } {
  const specs = g.options;
  if (!specs) return { tokens, options: {} };
  const options: Record<string, unknown> = {};
  const rest: string[] = [];
  for (const t of tokens) {
    const key = /^([a-z]+)=/i.exec(t)?.[1]?.toLowerCase();
    const spec = key !== undefined && Object.hasOwn(specs, key) ? specs[key as keyof CommandOptions] : undefined;
    if (!spec) {
      rest.push(t);
      continue;
    }
    if (Object.hasOwn(options, key!)) throw new CommandParseError("IAAS_SYNTAX", `\`${key}=\` is given twice.`);
    options[key!] = spec.parse(t);
  }
  return { tokens: rest, options: options as CommandOptions };
}

function fail(error: CommandParseError): ParseResult {
  return { success: false, error };
}

