import { z } from "zod";
import { VcenterIdSchema } from "./vcenters.js";
import { ApprovalAuditSchema } from "./approvals.js";
import { ActorSchema, CommandIdSchema, IsoTimeSchema, SlackUserIdSchema } from "./common.js";
import { ErrorCodeSchema } from "./errors.js";

/** `iaas.audit.command`: one record per finished command (who, what, when, outcome). */
export const CommandAuditSchema = z.strictObject({
  kind: z.literal("command"),
  id: CommandIdSchema,
  actor: ActorSchema,
  /** `power.off`, `vm.create`, ... */
  command: z.string(),
  /** The VM the command named, if any. */
  vm: z.string().optional(),
  /** The vCenter the command named (`vcenter`, `vc=` in Slack), if any: none is the default one. */
  vcenter: VcenterIdSchema.optional(),
  outcome: z.enum(["succeeded", "failed", "rejected"]),
  code: ErrorCodeSchema.optional(),
  message: z.string().max(3000),
  at: IsoTimeSchema,
  /** The approval the command ran under, and who gave it (the approvers' Slack user ids). */
  approvalId: z.string().max(64).optional(),
  approvedBy: z.array(SlackUserIdSchema).max(20).optional(),
});
export type CommandAudit = z.infer<typeof CommandAuditSchema>;

/** What remediation rule a decision belongs to: the alarm kinds of the policy. */
export const RemediationRuleSchema = z.enum(["cpu", "memory", "datastore", "vmStorage"]);
export type RemediationRule = z.infer<typeof RemediationRuleSchema>;

const FromToNumber = z.strictObject({ from: z.number(), to: z.number() });

/** What a remediation decision changed, or would have (or wanted to, when it did not act). */
export const RemediationChangeSchema = z.strictObject({
  cpu: FromToNumber.optional(),
  memoryMB: FromToNumber.optional(),
  datastore: z.strictObject({ from: z.string(), to: z.string() }).optional(),
});
export type RemediationChange = z.infer<typeof RemediationChangeSchema>;

/** acted: the change was made (or, in dry-run, would have been); deferred: waits for a power-off. */
export const RemediationDecisionSchema = z.enum(["acted", "deferred", "skipped", "failed"]);
export type RemediationDecision = z.infer<typeof RemediationDecisionSchema>;

/** Why remediation decided as it did: a stable code (`cooldown`, `at-cap`, `relocated`; services/remediation/README.md lists them). */
export const RemediationReasonSchema = z.string().regex(/^[a-z][a-z0-9-]{1,40}$/);

/**
 * `iaas.audit.remediation`: one record per remediation decision, whether it acted or not. `id` is
 * the id of the notice that told Slack about it (the Nats-Msg-Id too, so a redelivered event
 * records its decision once).
 */
export const RemediationAuditSchema = z.strictObject({
  kind: z.literal("remediation"),
  id: z.string().regex(/^[A-Za-z0-9_:.-]{8,128}$/),
  rule: RemediationRuleSchema,
  decision: RemediationDecisionSchema,
  /** Why it did not act, or how it acted: `cooldown`, `at-cap`, `no-target`, `deferred-applied`, ... (docs in services/remediation/README.md). */
  reason: RemediationReasonSchema.optional(),
  vm: z.string().optional(),
  datastore: z.string().optional(),
  /** The vCenter of the VM or datastore, when it is not the default one. */
  vcenter: VcenterIdSchema.optional(),
  /** What changed, or would have. */
  change: RemediationChangeSchema.optional(),
  /** The event that caused it: its Nats-Msg-Id (`<source>#<key>`) and, for alarms, the alarm's name. */
  cause: z.string().max(300).optional(),
  alarm: z.string().optional(),
  dryRun: z.boolean(),
  message: z.string().max(3000),
  at: IsoTimeSchema,
});
export type RemediationAudit = z.infer<typeof RemediationAuditSchema>;

/**
 * `iaas.audit.lease`: what the lease keeper did about one lease end: a reminder sent, the VM
 * powered off at the end, deleted or kept after the grace, an unreadable lease reported. `id` is
 * the step's key (`<moref>.<expiry>.<step>`, also the Nats-Msg-Id), so each step is recorded once.
 */
export const LeaseAuditSchema = z.strictObject({
  kind: z.literal("lease"),
  id: z.string().regex(/^[A-Za-z0-9_:.-]{8,128}$/),
  step: z.enum(["reminded", "powered-off", "deleted", "kept", "invalid", "failed"]),
  vm: z.string(),
  moref: z.string(),
  /** The lease end it is about (ISO 8601 UTC); unset for an invalid one. */
  expires: IsoTimeSchema.optional(),
  owner: z.string().optional(),
  team: z.string().optional(),
  message: z.string().max(3000),
  at: IsoTimeSchema,
});
export type LeaseAudit = z.infer<typeof LeaseAuditSchema>;

export const AuditSchema = z.discriminatedUnion("kind", [CommandAuditSchema, RemediationAuditSchema, ApprovalAuditSchema, LeaseAuditSchema]);
export type Audit = z.infer<typeof AuditSchema>;
