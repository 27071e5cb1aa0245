export * from "./commands.js";
export * from "./schema.js";
export { DEFAULTS as DEFAULT_POLICY } from "./defaults.js";
export { PolicyError, type PolicyIssue } from "./errors.js";
export { loadPolicy, parsePolicy, policyFromObject, DEFAULT_POLICY_SOURCE, ADMIN_ROLE, type Env } from "./load.js";
export { Policy, PROTECTED_COMMANDS, NO_USAGE, QUOTA_FIELDS, describeSize, teamLabel, type NamedSize, type AlarmKind, type VmIdentity, type VmOwnership, type Relation, type QuotaKind, type ApprovalFacts, type ApprovalMatch } from "./policy.js";
export { compileGlob, globFold, matchGlob, matchesAny, MAX_GLOB_LENGTH, type Glob, type GlobOptions } from "./glob.js";
