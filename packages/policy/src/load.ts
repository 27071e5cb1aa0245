import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { SlackUserIdSchema } from "@iaas/contracts";
import { DEFAULTS } from "./defaults.js";
import { PolicyError, issuesFromZod, policyErrorMap, show, type PolicyIssue } from "./errors.js";
import { Policy } from "./policy.js";
import { PolicyDocumentSchema, type PolicyDocument } from "./schema.js";

/** How the built-in default policy is named in errors and logs. */
export const DEFAULT_POLICY_SOURCE = "(built-in default)";

/** The role IAAS_ADMINS binds users to. */
export const ADMIN_ROLE = "admin";

export type Env = Record<string, string | undefined>;

/**
 * The policy every service starts with: the YAML file at `path` or `IAAS_POLICY`, else the
 * built-in default; plus an admin binding for each user id in `IAAS_ADMINS`. Throws PolicyError
 * (one line, naming the field) when the file cannot be read, parsed or validated. Synchronous:
 * it runs once at start, before anything listens.
 */
export function loadPolicy(opts: { path?: string; env: Env }): Policy {
  const path = opts.path ?? (opts.env.IAAS_POLICY?.trim() || undefined);
  if (path === undefined) return policyFromObject(DEFAULTS, { source: DEFAULT_POLICY_SOURCE, env: opts.env });
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : code;
    throw new PolicyError(path, [{ path: "", message: `cannot read the file (${why}); IAAS_POLICY must name a readable YAML file` }]);
  }
  return parsePolicy(text, { source: path, env: opts.env });
}

/** A policy from YAML text. `source` names it in errors (usually the file path). */
export function parsePolicy(text: string, opts: { source: string; env: Env }): Policy {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0];
    // yaml's own message carries "at line L, column C:" and a multi-line excerpt; keep the gist.
    const gist = yamlError.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    const where = pos ? `YAML syntax error at line ${pos.line}, column ${pos.col}` : "YAML syntax error";
    throw new PolicyError(opts.source, [{ path: "", message: `${where}: ${gist}` }]);
  }
  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyError(opts.source, [{ path: "", message: `YAML error: ${(err as Error).message.split("\n")[0]}` }]);
  }
  if (input === null || input === undefined) {
    throw new PolicyError(opts.source, [{ path: "", message: "the file is empty; see deploy/policy.example.yaml" }]);
  }
  return policyFromObject(input, opts);
}

/** A policy from an already-parsed value (YAML or JSON), validated exactly like a file. */
export function policyFromObject(input: unknown, opts: { source: string; env: Env }): Policy {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new PolicyError(opts.source, [{ path: "", message: `the policy must be a mapping of sections (got ${show(input)})` }]);
  }
  const parsed = PolicyDocumentSchema.safeParse(input, { error: policyErrorMap, reportInput: true });
  if (!parsed.success) throw new PolicyError(opts.source, issuesFromZod(parsed.error, PolicyDocumentSchema));
  const issues = crossCheck(parsed.data, input as Record<string, unknown>);
  if (issues.length) throw new PolicyError(opts.source, issues);
  const admins = adminsFrom(opts.env, parsed.data);
  if (admins.issues.length) throw new PolicyError(opts.source, admins.issues);
  const document: PolicyDocument = admins.users.length
    ? { ...parsed.data, bindings: [...parsed.data.bindings, { role: ADMIN_ROLE, users: admins.users }] }
    : parsed.data;
  return new Policy(document, opts.source);
}

/** Rules that span fields, checked once every field is well-formed. */
function crossCheck(p: PolicyDocument, raw: Record<string, unknown>): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const roleNames = Object.keys(p.roles);
  const sizeNames = Object.keys(p.sizes);

  p.bindings.forEach((b, i) => {
    if (!(b.role in p.roles)) {
      issues.push({ path: `bindings[${i}].role`, message: `no role named ${show(b.role)} (roles: ${roleNames.join(", ") || "none"})` });
    }
  });

  if (sizeNames.length === 0) issues.push({ path: "sizes", message: "must define at least one size" });
  else if (!(p.defaultSize in p.sizes)) {
    issues.push({ path: "defaultSize", message: `${show(p.defaultSize)} is not one of the sizes (${sizeNames.join(", ")})` });
  }
  for (const [name, s] of Object.entries(p.sizes)) {
    if (s.cpu > p.limits.maxCpu) issues.push({ path: `sizes.${name}.cpu`, message: `must be ≤ limits.maxCpu (${p.limits.maxCpu})` });
    if (s.memoryGB > p.limits.maxMemoryGB) {
      issues.push({ path: `sizes.${name}.memoryGB`, message: `must be ≤ limits.maxMemoryGB (${p.limits.maxMemoryGB})` });
    }
    if (s.diskGB > p.limits.maxDiskGB) issues.push({ path: `sizes.${name}.diskGB`, message: `must be ≤ limits.maxDiskGB (${p.limits.maxDiskGB})` });
  }

  // An approvals section written out must name roles that exist (the default rules name `admin`,
  // which a policy without that role simply has nobody to approve for).
  if (raw.approvals !== undefined) {
    p.approvals.rules.forEach((r, i) => {
      r.approvers.roles?.forEach((role, j) => {
        if (!(role in p.roles)) issues.push({ path: `approvals.rules[${i}].approvers.roles[${j}]`, message: `no role named ${show(role)} (roles: ${roleNames.join(", ") || "none"})` });
      });
    });
  }
  const names = p.approvals.rules.map((r) => r.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) issues.push({ path: `approvals.rules[${i}].name`, message: `${show(n)} names two rules` });
  });

  // The description is what a user reads when a name is refused; a custom pattern with the
  // default description would describe a rule that is not in force.
  const rawNaming = raw.naming as Record<string, unknown> | undefined;
  if (rawNaming && typeof rawNaming === "object" && rawNaming.pattern !== undefined && rawNaming.description === undefined) {
    issues.push({ path: "naming.description", message: "is required when naming.pattern is set (it is what users read when a name is refused)" });
  }
  try {
    new RegExp(p.naming.pattern);
  } catch (err) {
    issues.push({ path: "naming.pattern", message: `is not a valid regular expression: ${(err as Error).message}` });
  }
  return issues;
}

/** `IAAS_ADMINS=U01,U02`: user ids bound to the admin role on top of the policy's bindings. */
function adminsFrom(env: Env, p: PolicyDocument): { users: string[]; issues: PolicyIssue[] } {
  const users = (env.IAAS_ADMINS ?? "")
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const issues: PolicyIssue[] = users
    .filter((u) => !SlackUserIdSchema.safeParse(u).success)
    .map((u) => ({ path: "IAAS_ADMINS", message: `${show(u)} is not a Slack user id like U012ABC` }));
  if (users.length && !(ADMIN_ROLE in p.roles)) {
    issues.push({ path: "IAAS_ADMINS", message: `the policy has no role named ${ADMIN_ROLE} to bind these users to` });
  }
  return { users: [...new Set(users)], issues };
}
