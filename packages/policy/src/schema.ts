import { z } from "zod";
import { DurationSchema, SlackChannelIdSchema, SlackUserIdSchema, VcenterIdSchema } from "@iaas/contracts";
import { APPROVABLE_COMMANDS, COMMAND_IDS, expandCommandPattern, expandGrant } from "./commands.js";
import { DEFAULTS } from "./defaults.js";

// The policy file's schema. Strict everywhere: an unknown key is an error, so a typo such as
// `maxCPU` can never silently fall back to a default. Sections other than roles, bindings,
// sizes, defaultSize and limits may be left out; any field left out takes the value of the
// default policy (deploy/policy.example.yaml), which is written out in DEFAULTS.

const NO_CONTROL = /^[^\u0000-\u001f\u007f]+$/;

const RoleNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, "must be 1-32 lowercase letters, digits, - or _, starting with a letter");
const SizeNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, "must be 1-32 lowercase letters, digits, - or _, starting with a letter");

/** A role entry: a command id, `power.*` or `*`, optionally scoped to every VM with `:any`. */
const GrantEntrySchema = z.string().superRefine((s, ctx) => {
  const grants = expandGrant(s);
  if (typeof grants === "string") ctx.addIssue({ code: "custom", message: grants });
});

/** A confirm entry: a command id, `power.*` or `*`. */
const CommandEntrySchema = z.string().superRefine((s, ctx) => {
  if (expandCommandPattern(s) === undefined) {
    ctx.addIssue({ code: "custom", message: `unknown command "${s}" (commands: ${COMMAND_IDS.join(", ")}, power.*, snapshot.*, lease.*, *)` });
  }
});

// Reuse the wire contract's id rules, with messages that help someone editing YAML.
const UserIdSchema = z
  .string()
  .refine((s) => SlackUserIdSchema.safeParse(s).success, "must be a Slack user id like U012ABC (for every user, write `everyone: true`)");
const ChannelIdSchema = z
  .string()
  .refine((s) => SlackChannelIdSchema.safeParse(s).success, "must be a Slack channel id like C012ABC");
// Same rule as ActorSchema.groups in @iaas/contracts.
const GroupIdSchema = z.string().regex(/^S[A-Z0-9]{2,20}$/, "must be a Slack user group id like S012ABC");

const GlobSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(NO_CONTROL, "must not contain control characters");
/** An inventory path such as `/DC0/vm/prod`. */
const InventoryPathSchema = z
  .string()
  .max(1000)
  .regex(/^\/[^\u0000-\u001f\u007f]+$/, "must be an inventory path starting with / (for example /DC0/vm/prod)");
const ObjectNameSchema = z.string().min(1).max(255).regex(NO_CONTROL, "must not contain control characters");
const AlarmNameSchema = z.string().min(1).max(255).regex(NO_CONTROL, "must not contain control characters");

/** vSphere sizes memory in MB, in steps of 4 MB; a policy says GB, so 0.125 (128 MB) is fine, 0.1 is not. */
const MemoryGBSchema = z
  .number()
  .positive()
  .refine((v) => Number.isInteger(v * 256), "must be a whole number of 4 MB steps (for example 0.5, 2 or 16)");
const CpuSchema = z.number().int().min(1);
const PositiveIntSchema = z.number().int().min(1);

export const BindingSchema = z
  .strictObject({
    role: RoleNameSchema,
    users: z.array(UserIdSchema).min(1).optional(),
    groups: z.array(GroupIdSchema).min(1).optional(),
    channels: z.array(ChannelIdSchema).min(1).optional(),
    everyone: z.literal(true, { error: "must be true (leave it out rather than writing false)" }).optional(),
  })
  .superRefine((b, ctx) => {
    if (!b.everyone && !b.users && !b.groups && !b.channels) {
      ctx.addIssue({ code: "custom", message: "must name users, groups or channels, or say `everyone: true`" });
    }
  });
export type Binding = z.infer<typeof BindingSchema>;

export const SizeSchema = z.strictObject({
  cpu: CpuSchema,
  memoryGB: MemoryGBSchema,
  diskGB: z.number().positive(),
  /** A VM of this size needs an approval (the `approvals` rules with `when: {sizeApproval: true}`). */
  approval: z.boolean().optional(),
});
export type Size = z.infer<typeof SizeSchema>;

export const LimitsSchema = z.strictObject({
  maxCpu: CpuSchema,
  maxMemoryGB: MemoryGBSchema,
  maxDiskGB: z.number().positive(),
});
export type Limits = z.infer<typeof LimitsSchema>;

export const NamingSchema = z
  .strictObject({
    /** A JavaScript regular expression source; a new VM name must match it whole (anchor it). */
    pattern: z.string().min(1).max(500).default(DEFAULTS.naming.pattern),
    /** The rule in words, shown to a user whose name does not match. */
    description: z.string().min(1).max(300).regex(NO_CONTROL, "must be one line").default(DEFAULTS.naming.description),
    /** vSphere allows 80 characters for a VM name. */
    maxLength: z.number().int().min(1).max(80).default(DEFAULTS.naming.maxLength),
  })
  .prefault({});
export type Naming = z.infer<typeof NamingSchema>;

export const PlacementSchema = z
  .strictObject({
    datacenter: ObjectNameSchema,
    cluster: ObjectNameSchema.optional(),
    resourcePool: InventoryPathSchema.optional(),
    folder: InventoryPathSchema.optional(),
    datastore: ObjectNameSchema.optional(),
  })
  // Placement fields are a set: writing the section replaces the default placement whole, so a
  // real vCenter's policy never inherits the simulator's resource pool by accident.
  .default(() => ({ ...DEFAULTS.placement }));
export type Placement = z.infer<typeof PlacementSchema>;

export const ProtectedSchema = z
  .strictObject({
    names: z.array(GlobSchema).default([...DEFAULTS.protected.names]),
    folders: z.array(InventoryPathSchema).default([...DEFAULTS.protected.folders]),
  })
  .prefault({});
export type Protected = z.infer<typeof ProtectedSchema>;

// Quotas: what one user's, or one team's, VMs may use in all. A limit left out is no limit.
// The bounds are sanity, not policy: a value above them is a typo (GB written as MB).
const QuotaLimitsSchema = z.strictObject({
  vms: z.number().int().min(0).max(100_000).optional(),
  cpu: z.number().int().min(0).max(1_000_000).optional(),
  memoryGB: z.number().min(0).max(10_000_000).optional(),
  diskGB: z.number().min(0).max(100_000_000).optional(),
});
export type QuotaLimits = z.infer<typeof QuotaLimitsSchema>;

const TeamKeySchema = z
  .string()
  .regex(/^(S[A-Z0-9]{2,20}|[a-z][a-z0-9_-]{0,31})$/, "must be a Slack user group id like S012ABC or a team name from `teams`");

export const QuotasSchema = z
  .preprocess(
    // Version 1 wrote `vmsPerUser: 10` and `users: {U…: 20}` (VM counts): read them as the
    // `vms` of `perUser` and of each user, so a version-1 policy keeps its meaning.
    (raw) => {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
      const q = { ...(raw as Record<string, unknown>) };
      if ("vmsPerUser" in q) {
        const perUser = q.perUser && typeof q.perUser === "object" ? (q.perUser as Record<string, unknown>) : {};
        // Only the VM count: version 1 had no other limit, so none is added.
        if (!("vms" in perUser)) q.perUser = { ...perUser, vms: q.vmsPerUser };
        delete q.vmsPerUser;
      }
      if (q.users && typeof q.users === "object" && !Array.isArray(q.users)) {
        q.users = Object.fromEntries(Object.entries(q.users as Record<string, unknown>).map(([k, v]) => [k, typeof v === "number" ? { vms: v } : v]));
      }
      return q;
    },
    z.strictObject({
      perUser: QuotaLimitsSchema.default({ ...DEFAULTS.quotas.perUser }),
      perTeam: QuotaLimitsSchema.default({ ...DEFAULTS.quotas.perTeam }),
      /** Per-user limits, by Slack user id; each field left out takes perUser's. */
      users: z
        .record(z.string().refine((s) => SlackUserIdSchema.safeParse(s).success, "must be a Slack user id like U012ABC"), QuotaLimitsSchema)
        .default({}),
      /** Per-team limits, by user group id or team name; each field left out takes perTeam's. */
      teams: z.record(TeamKeySchema, QuotaLimitsSchema).default({}),
    }),
  )
  .prefault({});
export type Quotas = z.infer<typeof QuotasSchema>;

/**
 * Teams the policy names, besides Slack user groups (which are teams by their `S…` id): a
 * member is a user listed or a member of a group listed.
 */
const TeamNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "must be 1-32 lowercase letters, digits, - or _, starting with a letter");
export const TeamSchema = z
  .strictObject({
    users: z.array(UserIdSchema).optional(),
    groups: z.array(GroupIdSchema).optional(),
    description: z.string().max(300).regex(NO_CONTROL, "must be one line").optional(),
    /** Where lease reminders of the team's VMs go (besides the owner's DM). */
    channel: ChannelIdSchema.optional(),
  })
  .superRefine((t, ctx) => {
    if (!t.users?.length && !t.groups?.length) ctx.addIssue({ code: "custom", message: "must list users or groups" });
  });
export type Team = z.infer<typeof TeamSchema>;

export const RateLimitSchema = z
  .strictObject({
    perUserPerMinute: PositiveIntSchema.default(DEFAULTS.rateLimit.perUserPerMinute),
  })
  .prefault({});
export type RateLimit = z.infer<typeof RateLimitSchema>;

export const WithoutHotAddSchema = z.enum(["defer", "skip", "restart"]);
export type WithoutHotAdd = z.infer<typeof WithoutHotAddSchema>;

export const RemediationSchema = z
  .strictObject({
    enabled: z.boolean().default(DEFAULTS.remediation.enabled),
    dryRun: z.boolean().default(DEFAULTS.remediation.dryRun),
    cpuAlarms: z.array(AlarmNameSchema).default([...DEFAULTS.remediation.cpuAlarms]),
    memoryAlarms: z.array(AlarmNameSchema).default([...DEFAULTS.remediation.memoryAlarms]),
    datastoreAlarms: z.array(AlarmNameSchema).default([...DEFAULTS.remediation.datastoreAlarms]),
    vmStorageAlarms: z.array(AlarmNameSchema).default([...DEFAULTS.remediation.vmStorageAlarms]),
    maxCpu: CpuSchema.default(DEFAULTS.remediation.maxCpu),
    maxMemoryGB: MemoryGBSchema.default(DEFAULTS.remediation.maxMemoryGB),
    cooldownMinutes: PositiveIntSchema.default(DEFAULTS.remediation.cooldownMinutes),
    withoutHotAdd: WithoutHotAddSchema.default(DEFAULTS.remediation.withoutHotAdd),
    restartOptIn: z
      .strictObject({ names: z.array(GlobSchema).default([...DEFAULTS.remediation.restartOptIn.names]) })
      .prefault({}),
    excludedDatastores: z.array(GlobSchema).default([...DEFAULTS.remediation.excludedDatastores]),
    datastoreThresholdPercent: z.number().int().min(1).max(100).default(DEFAULTS.remediation.datastoreThresholdPercent),
    maxActionsPerMinute: PositiveIntSchema.default(DEFAULTS.remediation.maxActionsPerMinute),
    /** An alarm red `count` times within `withinMinutes` on one VM: remediation hands that VM over to people. */
    flap: z
      .strictObject({
        count: z.number().int().min(2).max(1000).default(DEFAULTS.remediation.flap.count),
        withinMinutes: z.number().int().min(1).max(1440).default(DEFAULTS.remediation.flap.withinMinutes),
      })
      .prefault({}),
  })
  .prefault({});
export type RemediationSettings = z.infer<typeof RemediationSchema>;

// ---- approvals -------------------------------------------------------------------------

const ApprovableSchema = z.enum(APPROVABLE_COMMANDS, { error: `must be one of ${APPROVABLE_COMMANDS.join(", ")}` });

/**
 * When a rule applies: every condition given must hold (none given: every instance of its
 * commands). Conditions a command cannot meet (a size for `delete`) do not hold.
 */
export const ApprovalWhenSchema = z.strictObject({
  /** The size asked for is marked `approval: true`. */
  sizeApproval: z.literal(true).optional(),
  /** The VM would have more vCPU than this (the size's, or a resize's target). */
  cpuOver: z.number().int().min(0).optional(),
  /** The VM would have more memory than this, in GB. */
  memoryGBOver: z.number().min(0).optional(),
  /** The lease asked for (create, clone, deploy, extend) is longer than `leases.max`. */
  leaseOverMax: z.literal(true).optional(),
  /** The VM's name (the new name for create, clone, deploy) matches one of these globs. */
  names: z.array(GlobSchema).min(1).optional(),
  /** The request is over the requester's quota or the team's: it waits for an approver instead of being refused. */
  quotaOverrun: z.literal(true).optional(),
});
export type ApprovalWhen = z.infer<typeof ApprovalWhenSchema>;

export const ApproversSchema = z
  .strictObject({
    users: z.array(UserIdSchema).min(1).optional(),
    groups: z.array(GroupIdSchema).min(1).optional(),
    /** Everyone bound to one of these roles (the admin role holds IAAS_ADMINS). */
    roles: z.array(RoleNameSchema).min(1).optional(),
  })
  .superRefine((a, ctx) => {
    if (!a.users && !a.groups && !a.roles) ctx.addIssue({ code: "custom", message: "must name users, groups or roles" });
  });
export type Approvers = z.infer<typeof ApproversSchema>;

export const ApprovalRuleSchema = z.strictObject({
  /** Shown on the card and in the audit record. */
  name: RoleNameSchema,
  description: z.string().max(300).regex(NO_CONTROL, "must be one line").optional(),
  commands: z.array(ApprovableSchema).min(1),
  when: ApprovalWhenSchema.default({}),
  approvers: ApproversSchema,
  /** How many different approvers must say yes. */
  minApprovals: z.number().int().min(1).max(10).default(1),
  /** A request nobody decided is rejected after this long (at most 30 days); a reminder goes out at half. */
  expireAfterMinutes: z.number().int().min(1).max(43_200).default(1440),
  /** The card's channel: SLACK_APPROVALS_CHANNEL, else SLACK_NOTIFY_CHANNEL, when not given. */
  channel: ChannelIdSchema.optional(),
});
export type ApprovalRule = z.infer<typeof ApprovalRuleSchema>;

export const ApprovalsSchema = z
  .strictObject({
    /** In order: the first rule that matches a command is the one it waits for. */
    rules: z.array(ApprovalRuleSchema).default(() => structuredClone(DEFAULTS.approvals.rules) as unknown as ApprovalRule[]),
  })
  .prefault({});
export type Approvals = z.infer<typeof ApprovalsSchema>;

// ---- leases and snapshots -----------------------------------------------------------------

export const LeasesSchema = z
  .strictObject({
    enabled: z.boolean().default(DEFAULTS.leases.enabled),
    /** A new VM's lease when none is asked for, and what Extend adds. */
    default: DurationSchema.prefault(DEFAULTS.leases.default),
    /** The longest lease (from now) without an approval. */
    max: DurationSchema.prefault(DEFAULTS.leases.max),
    /** How long a VM stays powered off after its lease ended before `afterGrace` happens. */
    grace: DurationSchema.prefault(DEFAULTS.leases.grace),
    /** Reminders to the owner this long before the end. */
    remindBefore: z.array(DurationSchema).max(10).prefault([...DEFAULTS.leases.remindBefore]),
    onExpiry: z.literal("powerOff").default(DEFAULTS.leases.onExpiry),
    afterGrace: z.enum(["delete", "keep"]).default(DEFAULTS.leases.afterGrace),
  })
  .superRefine((l, ctx) => {
    if (l.default > l.max) ctx.addIssue({ code: "custom", path: ["default"], message: "is longer than max" });
  })
  .prefault({});
export type Leases = z.infer<typeof LeasesSchema>;

export const SnapshotsSchema = z
  .strictObject({
    /** A VM may have at most this many snapshots (every snapshot counts, not only iaas's). */
    maxPerVm: z.number().int().min(1).max(32).default(DEFAULTS.snapshots.maxPerVm),
    /** Snapshots iaas made are deleted when older than this. */
    maxAge: DurationSchema.prefault(DEFAULTS.snapshots.maxAge),
  })
  .prefault({});
export type Snapshots = z.infer<typeof SnapshotsSchema>;

/**
 * What differs in one vCenter (a VCENTERS id, or `default`): its own placement, taken whole as the
 * top-level one is (a datacenter name of one vCenter means nothing in another), and limits field by
 * field over the top-level ones (a smaller site may allow smaller VMs).
 */
export const VcenterPolicySchema = z.strictObject({
  placement: PlacementSchema.unwrap().optional(),
  limits: LimitsSchema.partial().optional(),
});
export type VcenterPolicy = z.infer<typeof VcenterPolicySchema>;

/** The whole policy file. */
export const PolicyDocumentSchema = z.strictObject({
  roles: z.record(RoleNameSchema, z.array(GrantEntrySchema).min(1)),
  bindings: z.array(BindingSchema),
  sizes: z.record(SizeNameSchema, SizeSchema),
  defaultSize: SizeNameSchema,
  limits: LimitsSchema,
  naming: NamingSchema,
  placement: PlacementSchema,
  /** Placement and limits per vCenter, by id; a vCenter not named takes the top-level ones. */
  vcenters: z.record(VcenterIdSchema, VcenterPolicySchema).default({}),
  protected: ProtectedSchema,
  teams: z.record(TeamNameSchema, TeamSchema).default({}),
  quotas: QuotasSchema,
  confirm: z.array(CommandEntrySchema).default([...DEFAULTS.confirm]),
  /** Slack's response_url lives 30 minutes, so a confirmation cannot outlive it. */
  confirmTtlSeconds: z.number().int().min(10).max(1800).default(DEFAULTS.confirmTtlSeconds),
  rateLimit: RateLimitSchema,
  remediation: RemediationSchema,
  approvals: ApprovalsSchema,
  leases: LeasesSchema,
  snapshots: SnapshotsSchema,
});
/** A validated policy, every default filled in. */
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;
/** A policy as written in YAML (optional sections and fields may be left out). */
export type PolicyInput = z.input<typeof PolicyDocumentSchema>;
