import { z } from "zod";

/** One problem in a policy, at a field path such as `sizes.large.cpu` or `bindings[2].role`. */
export type PolicyIssue = { path: string; message: string };

/**
 * A policy that cannot be used. The message is one line and names the file and each bad field:
 * `policy /etc/iaas/policy.yaml: sizes.large.cpu: must be ≤ limits.maxCpu (8)`. Services print
 * it and exit non-zero at start.
 */
export class PolicyError extends Error {
  readonly source: string;
  readonly issues: readonly PolicyIssue[];

  constructor(source: string, issues: readonly PolicyIssue[]) {
    super(`policy ${source}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`);
    this.name = "PolicyError";
    this.source = source;
    this.issues = issues;
  }
}

/** `["bindings", 2, "role"]` → `bindings[2].role`; odd keys are quoted: `sizes["big one"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** A value as an error may quote it: short, one line. */
export function show(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "text",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
};

/**
 * Per-parse zod error map: phrases the built-in checks the way an admin editing YAML reads them.
 * Schema-level messages (set in schema.ts) take precedence over this.
 */
export const policyErrorMap: z.core.$ZodErrorMap = (iss) => {
  const input: unknown = iss.input;
  switch (iss.code) {
    case "invalid_type":
      if (input === undefined) return "is required";
      return `must be ${EXPECTED[iss.expected] ?? iss.expected} (got ${show(input)})`;
    case "invalid_value":
      if (input === undefined) return "is required";
      return `must be one of: ${iss.values.map(String).join(", ")} (got ${show(input)})`;
    case "too_small": {
      const min = Number(iss.minimum);
      if (iss.origin === "array") return `must list at least ${min} ${min === 1 ? "entry" : "entries"}`;
      if (iss.origin === "string") return min === 1 ? "must not be empty" : `must be at least ${min} characters`;
      return iss.inclusive ? `must be ≥ ${min} (got ${show(input)})` : `must be > ${min} (got ${show(input)})`;
    }
    case "too_big": {
      const max = Number(iss.maximum);
      if (iss.origin === "array") return `must list at most ${max} entries`;
      if (iss.origin === "string") return `must be at most ${max} characters`;
      return iss.inclusive ? `must be ≤ ${max} (got ${show(input)})` : `must be < ${max} (got ${show(input)})`;
    }
    default:
      return undefined;
  }
};

/** What the keys of each mapping are, for "not a valid …" messages. */
const KEY_NOUNS: Record<string, string> = { roles: "role name", sizes: "size name", users: "Slack user id" };

/** zod issues → policy issues: one per unknown key, with the keys that are allowed there. */
export function issuesFromZod(error: z.ZodError, root: z.ZodType): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const iss of error.issues) {
    if (iss.code === "unrecognized_keys") {
      const allowed = objectKeysAt(root, iss.path);
      for (const key of iss.keys) {
        out.push({
          path: formatPath([...iss.path, key]),
          message: `unknown field${allowed ? ` (allowed here: ${allowed.join(", ")})` : ""}`,
        });
      }
    } else if (iss.code === "invalid_key") {
      const key = iss.path[iss.path.length - 1];
      const parent = iss.path.slice(0, -1);
      const noun = KEY_NOUNS[String(parent[parent.length - 1])] ?? "key";
      const why = iss.issues.map((i) => i.message).join("; ");
      out.push({ path: formatPath(parent), message: `${show(String(key))} is not a valid ${noun}: ${why}` });
    } else {
      out.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  return out;
}

// Minimal view of zod's internal definitions, enough to find the keys an object accepts.
type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
};
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    const next = d.innerType ?? (d.type === "pipe" ? d.in : undefined);
    if (!next) return s;
    s = next;
  }
}

/** The keys a strict object at `path` of `root` accepts, for "unknown field" hints. */
function objectKeysAt(root: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let s: z.ZodType | undefined = unwrap(root);
  for (const seg of path) {
    const d = defOf(s);
    if (d.type === "object" && d.shape) s = d.shape[String(seg)];
    else if (d.type === "record") s = d.valueType;
    else if (d.type === "array") s = d.element;
    else return undefined;
    if (!s) return undefined;
    s = unwrap(s);
  }
  const d = defOf(s);
  return d.type === "object" && d.shape ? Object.keys(d.shape) : undefined;
}
