import { CommandAreas, IaasError, VmRefSchema, formatIssues, type ErrorCode, type PowerAction, type VmRef } from "@iaas/contracts";
import { code } from "./mrkdwn.js";

/**
 * The `/iaas` grammar. Pure: text in, a typed command or a coded error out; no I/O, no Slack.
 *
 * Table-driven: each command is a verb plus a list of argument specs; usage lines and syntax
 * errors are derived from the same table, so a new command (create, clone, deploy, resize,
 * delete, list, info, ...) is one more entry in `Grammar` and one more member of `ParsedCommand`.
 * Verbs and keywords match exactly (case-insensitively); there is no prefix, substring or
 * "did you mean" routing: `pow off x` and `poweroff x` are unknown commands.
 */

export type ParsedCommand = { verb: "help"; topic?: Verb } | { verb: "power"; action: PowerAction; vm: VmRef };
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
}

type ArgValues<A extends readonly ArgSpec<unknown>[]> = {
  [K in keyof A]: A[K] extends ArgSpec<infer T> ? (A[K]["optional"] extends true ? T | undefined : T) : never;
};

function listWords(words: readonly string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
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
        if (w === undefined) throw new CommandParseError("IAAS_SYNTAX", `${code(token)} is not ${what}: use ${listWords(words)}.`);
        return w;
      },
    };
  },
  /** `<vm>`: an exact VM name or an inventory path starting with `/`; never a wildcard. */
  vm(): ArgSpec<VmRef> & { optional: false } {
    return {
      usage: "<vm>",
      describe: "a VM name",
      optional: false,
      extraHint: "VM names cannot contain spaces",
      parse(token) {
        const r = VmRefSchema.safeParse(token);
        if (!r.success) {
          throw new CommandParseError("IAAS_BAD_VM_NAME", `${code(token)} is not a valid VM name (${formatIssues(r.error)}).`);
        }
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

interface CommandGrammar<V extends Verb, A extends readonly ArgSpec<unknown>[]> {
  verb: V;
  summary: string;
  args: A;
  build(values: ArgValues<A>): Extract<ParsedCommand, { verb: V }>;
}

/** A table row with its argument types erased (checked once, in `command`). */
export interface GrammarEntry<V extends Verb = Verb> {
  verb: V;
  summary: string;
  args: readonly ArgSpec<unknown>[];
  build(values: readonly unknown[]): ParsedCommand;
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
    if (!g) throw new CommandParseError("IAAS_UNKNOWN_COMMAND", `There is no command ${code(token)}. Run \`/iaas help\` to see the commands.`);
    return g.verb;
  },
};

const POWER_ACTIONS = CommandAreas.power;

/** Every command, in the order `help` lists them. Keyed by verb, so a verb without grammar does not compile. */
export const Grammar: { readonly [V in Verb]: GrammarEntry<V> } = {
  help: command({
    verb: "help",
    summary: "Show the commands, or how to use one of them.",
    args: [arg.optional(helpTopic, "command")],
    build: ([topic]) => (topic === undefined ? { verb: "help" } : { verb: "help", topic }),
  }),
  power: command({
    verb: "power",
    summary: "Power a VM on or off, reset or suspend it, or shut down or reboot its guest OS (needs VMware Tools).",
    args: [arg.keyword("a power action", POWER_ACTIONS), arg.vm()],
    build: ([action, vm]) => ({ verb: "power", action, vm }),
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
  return [[g.verb, ...g.args.map((a) => a.usage)].join(" ")];
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
  return text
    .split(/\s+/u)
    .filter((t) => t.length > 0)
    .map((t) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"));
}

/** Parses the text after `/iaas`. Empty text is `help`. */
export function parseCommand(text: string): ParseResult {
  const tokens = tokenize(text);
  const [word, ...rest] = tokens;
  if (word === undefined) return { success: true, data: { verb: "help" } };
  const g = lookup(word);
  if (!g) {
    return fail(new CommandParseError("IAAS_UNKNOWN_COMMAND", `Unknown command ${code(word)}. Run \`/iaas help\` to see the commands.`));
  }
  try {
    return { success: true, data: parseArgs(g, rest) };
  } catch (err) {
    if (!(err instanceof CommandParseError)) throw err;
    return fail(new CommandParseError(err.code, err.message, usageOf(g.verb), g.verb));
  }
}

function parseArgs(g: GrammarEntry, tokens: string[]): ParsedCommand {
  const specs = g.args;
  const values: unknown[] = [];
  const seen: string[] = [g.verb];
  specs.forEach((spec, i) => {
    const token = tokens[i];
    if (token === undefined) {
      if (!spec.optional) throw new CommandParseError("IAAS_SYNTAX", `${code(seen.join(" "))} needs ${spec.describe}.`);
      values.push(undefined);
      return;
    }
    values.push(spec.parse(token));
    seen.push(token);
  });
  const extra = tokens[specs.length];
  if (extra !== undefined) {
    const hint = specs[specs.length - 1]?.extraHint;
    throw new CommandParseError("IAAS_SYNTAX", `Unexpected ${code(extra)} after ${code(seen.join(" "))}${hint ? `; ${hint}` : ""}.`);
  }
  return g.build(values);
}

function fail(error: CommandParseError): ParseResult {
  return { success: false, error };
}

