import { z } from "zod";
import { ActorSchema, CommandIdSchema, IsoTimeSchema, SlackUserIdSchema, TeamIdSchema, VmRefSchema, VmSummarySchema, type PowerState } from "./common.js";
import { VcenterIdSchema } from "./vcenters.js";
import { CodedErrorSchema } from "./errors.js";
import { MAX_DURATION_MS } from "./durations.js";
import { CommandAreas } from "./subjects.js";

export const PowerActionSchema = z.enum(CommandAreas.power);
export type PowerAction = z.infer<typeof PowerActionSchema>;

/** The power state a finished action leaves a VM in; reset and reboot keep it where it was (on: they need it on). */
export const PowerStateAfter: Readonly<Record<PowerAction, PowerState | undefined>> = {
  on: "poweredOn",
  off: "poweredOff",
  suspend: "suspended",
  shutdown: "poweredOff",
  reset: undefined,
  reboot: undefined,
};

const commandBase = {
  id: CommandIdSchema,
  actor: ActorSchema,
  issuedAt: IsoTimeSchema,
};

/**
 * The vCenter the command acts in (`vc=` in Slack): every proxy request made for it names this
 * one. Without it, the default vCenter. A clone or deploy copies within that one vCenter.
 */
const inVcenter = { vcenter: VcenterIdSchema.optional() };

/** `iaas.cmd.power.<action>`: the action in the body must equal the subject's. */
export const PowerCommandSchema = z.strictObject({
  ...commandBase,
  ...inVcenter,
  area: z.literal("power"),
  action: PowerActionSchema,
  vm: VmRefSchema,
});
export type PowerCommand = z.infer<typeof PowerCommandSchema>;

// ---- iaas.cmd.vm.<action> -------------------------------------------------------------------
// Names and sizes are only shaped here; what is allowed (the naming rule, the sizes, the limits,
// quotas, protected VMs, ownership) is policy, checked by the gateway and again by vm-lifecycle,
// so a command published straight to NATS gets the same specific answer as one from Slack.

/**
 * A new VM's name, in a command and in the proxy's create and clone requests alike. Only what
 * vCenter needs is checked here: no `/`, `\\` or `%` (vCenter stores them escaped, as `%2f`,
 * `%5c` and `%25`, so the VM could not be found by the name given), no wildcards, no control characters. The policy's naming rule decides whether the name
 * may be used.
 */
export const NewVmNameSchema = z
  .string()
  .min(1, "a name is required")
  .max(80, "is longer than 80 characters")
  .regex(/^[^/\\%*?[\]\u0000-\u001f\u007f]+$/, "must not contain / \\ % wildcards or control characters");

/** A policy size name (`small`); matched case-insensitively against the policy's sizes. */
export const SizeNameSchema = z.string().min(1).max(64).regex(/^[^\u0000-\u001f\u007f\s]+$/, "must be one word");

const vmBase = { ...commandBase, ...inVcenter, area: z.literal("vm") };

/**
 * The id of the approval a command runs under: set by the gateway when an approver said yes.
 * A command the policy's `approvals` rules match is refused (IAAS_APPROVAL_REQUIRED) unless the
 * approval record with this id (bucket `iaas_approvals`) is approved and is for exactly this
 * command: same verb, VM, size (or resources, lease) and requester.
 */
export const ApprovalIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, "must be 8-64 of A-Z a-z 0-9 _ -");
const approval = { approvalId: ApprovalIdSchema.optional() };

/** A lease's length in ms (`lease=7d` of create, clone and deploy; `extend … 14d`): 1 s to 10 years. */
export const LeaseMsSchema = z.number().int().min(1000).max(MAX_DURATION_MS);

/** `iaas.cmd.vm.create`: a new VM of a policy size (the default size when none is named). */
export const VmCreateCommandSchema = z.strictObject({ ...vmBase, action: z.literal("create"), name: NewVmNameSchema, size: SizeNameSchema.optional(), team: TeamIdSchema.optional(), leaseMs: LeaseMsSchema.optional(), ...approval });
/** `iaas.cmd.vm.clone`: a full clone of a VM (not a template). */
export const VmCloneCommandSchema = z.strictObject({ ...vmBase, action: z.literal("clone"), source: VmRefSchema, name: NewVmNameSchema, team: TeamIdSchema.optional(), leaseMs: LeaseMsSchema.optional(), ...approval });
/** `iaas.cmd.vm.deploy`: a new VM from a template, with a policy size (the default size when none is named). */
export const VmDeployCommandSchema = z.strictObject({ ...vmBase, action: z.literal("deploy"), template: VmRefSchema, name: NewVmNameSchema, size: SizeNameSchema.optional(), team: TeamIdSchema.optional(), leaseMs: LeaseMsSchema.optional(), ...approval });
/** `iaas.cmd.vm.delete`: powers the VM off if needed and deletes it. Confirmation happens before publishing. */
export const VmDeleteCommandSchema = z.strictObject({ ...vmBase, action: z.literal("delete"), vm: VmRefSchema, ...approval });
/**
 * `iaas.cmd.vm.resize`: absolute targets (`cpu=4` means 4 vCPUs, not 4 more), so applying a
 * command twice changes nothing the second time. At least one of the two must be given.
 */
export const VmResizeCommandSchema = z.strictObject({
  ...vmBase,
  action: z.literal("resize"),
  vm: VmRefSchema,
  cpu: z.number().int().min(1).max(768).optional(),
  memoryGB: z.number().positive().max(24 * 1024).optional(),
  ...approval,
});

/**
 * `iaas.cmd.vm.owner`: adopts a VM or hands it on. `owner` sets the owner, `team` the team
 * (`null` clears it); at least one of the two is given. Admins (`owner:any`) act on any VM, the
 * current owner on their own.
 */
export const VmOwnerCommandSchema = z.strictObject({
  ...vmBase,
  action: z.literal("owner"),
  vm: VmRefSchema,
  owner: SlackUserIdSchema.optional(),
  team: TeamIdSchema.nullable().optional(),
});

export const VmCommandSchema = z.discriminatedUnion("action", [
  VmCreateCommandSchema,
  VmCloneCommandSchema,
  VmDeployCommandSchema,
  VmDeleteCommandSchema,
  VmResizeCommandSchema,
  VmOwnerCommandSchema,
]);
export type VmCommand = z.infer<typeof VmCommandSchema>;
export type VmAction = VmCommand["action"];

// ---- iaas.cmd.snapshot.<action> -------------------------------------------------------------

/**
 * A snapshot's name, exactly as vSphere shows it: 1-80 characters, no control characters, no
 * leading or trailing spaces. Without one, `create` names it `iaas-` and the UTC time.
 */
export const SnapshotNameSchema = z
  .string()
  .min(1)
  .max(80, "is longer than 80 characters")
  .regex(/^[^\u0000-\u001f\u007f]+$/, "must not contain control characters")
  .refine((s) => s.trim() === s, "must not start or end with spaces");

const snapshotBase = { ...commandBase, ...inVcenter, area: z.literal("snapshot"), vm: VmRefSchema };
/** `iaas.cmd.snapshot.create`: a snapshot without memory (quiesced only when Tools run). */
export const SnapshotCreateCommandSchema = z.strictObject({ ...snapshotBase, action: z.literal("create"), name: SnapshotNameSchema.optional() });
/** `iaas.cmd.snapshot.revert`: back to the named snapshot, or to the current one. Confirmed before publishing. */
export const SnapshotRevertCommandSchema = z.strictObject({ ...snapshotBase, action: z.literal("revert"), name: SnapshotNameSchema.optional(), ...approval });
/** `iaas.cmd.snapshot.delete`: removes one snapshot; its children are kept. */
export const SnapshotDeleteCommandSchema = z.strictObject({ ...snapshotBase, action: z.literal("delete"), name: SnapshotNameSchema });
export const SnapshotCommandSchema = z.discriminatedUnion("action", [SnapshotCreateCommandSchema, SnapshotRevertCommandSchema, SnapshotDeleteCommandSchema]);
export type SnapshotCommand = z.infer<typeof SnapshotCommandSchema>;

// ---- iaas.cmd.lease.<action> ----------------------------------------------------------------

const leaseBase = { ...commandBase, ...inVcenter, area: z.literal("lease"), vm: VmRefSchema };
/**
 * `iaas.cmd.lease.extend`: the lease ends `durationMs` after the command's `issuedAt` (so a
 * redelivery sets the same time); the policy's `leases.default` when not given. Longer than
 * `leases.max` needs an approval.
 */
export const LeaseExtendCommandSchema = z.strictObject({
  ...leaseBase,
  action: z.literal("extend"),
  durationMs: LeaseMsSchema.optional(),
  /** Also power the VM on (the Extend button of a VM its lease's end powered off); needs `power.on` on it. */
  powerOn: z.boolean().optional(),
  ...approval,
});
/** `iaas.cmd.lease.set` (admins): a lease of `durationMs` from `issuedAt` on any VM, or none (`null`). */
export const LeaseSetCommandSchema = z.strictObject({ ...leaseBase, action: z.literal("set"), durationMs: LeaseMsSchema.nullable() });
export const LeaseCommandSchema = z.discriminatedUnion("action", [LeaseExtendCommandSchema, LeaseSetCommandSchema]);
export type LeaseCommand = z.infer<typeof LeaseCommandSchema>;

export const CommandSchema = z.discriminatedUnion("area", [PowerCommandSchema, VmCommandSchema, SnapshotCommandSchema, LeaseCommandSchema]);
export type Command = z.infer<typeof CommandSchema>;

/**
 * How a step or a command ended, as a stable code: `working` (a progress step), `done`,
 * `already-done` (a resumed command found the VM already as asked), `unchanged` (a resize to what
 * the VM already has).
 */
export const ResultCodeSchema = z.enum(["working", "done", "already-done", "unchanged"]);
export type ResultCode = z.infer<typeof ResultCodeSchema>;

/**
 * The facts of a result, for programs and for the gateway, which words them for Slack; `message`
 * says the same in plain text. The action is the result's `command` (`power.on`, `vm.clone`).
 */
export const ResultFactsSchema = z.strictObject({
  code: ResultCodeSchema,
  /** The VM acted on, by name: also where the result carries no summary (a delete, a progress step). */
  vm: z.string().max(255).optional(),
  /** The vCenter of that VM, when the command named one (`vcenter`). */
  vcenter: VcenterIdSchema.optional(),
  /** The VM a clone copies, or the template a deploy copies. */
  source: z.string().max(255).optional(),
  /** The policy size a create or a deploy uses. */
  size: z.strictObject({ name: z.string().max(64), cpu: z.number().int().positive(), memoryMB: z.number().int().positive(), diskGB: z.number().positive().optional() }).optional(),
  /** The VM's owner and team after the command (create, clone, deploy, owner). */
  owner: z.string().max(32).optional(),
  team: z.string().max(32).optional(),
  /** The snapshot a snapshot command made, reverted to or deleted. */
  snapshot: z.string().max(80).optional(),
  /** The lease's end after the command (create, clone, deploy, lease extend and set); `null`: no lease. */
  leaseExpires: IsoTimeSchema.nullable().optional(),
  /** The approval the command ran under, and who gave it. */
  approvalId: z.string().max(64).optional(),
  approvedBy: z.array(z.string().max(32)).max(20).optional(),
});
export type ResultFacts = z.infer<typeof ResultFactsSchema>;

/** `iaas.result.<id>`: progress messages, then exactly one final result (succeeded or failed). */
const ProgressResultSchema = z.strictObject({
  id: CommandIdSchema,
  status: z.literal("progress"),
  command: z.string(),
  /** Plain text (names between backticks), no Slack markup: the gateway escapes it for Slack. */
  message: z.string().max(3000),
  facts: ResultFactsSchema.optional(),
  at: IsoTimeSchema,
});
const SucceededResultSchema = z.strictObject({
  id: CommandIdSchema,
  status: z.literal("succeeded"),
  command: z.string(),
  /** Plain text (names between backticks), no Slack markup: the gateway escapes it for Slack. */
  message: z.string().max(3000),
  facts: ResultFactsSchema.optional(),
  vm: VmSummarySchema.optional(),
  at: IsoTimeSchema,
});
const FailedResultSchema = z.strictObject({
  id: CommandIdSchema,
  status: z.literal("failed"),
  command: z.string(),
  error: CodedErrorSchema,
  at: IsoTimeSchema,
});

export const ResultSchema = z.discriminatedUnion("status", [ProgressResultSchema, SucceededResultSchema, FailedResultSchema]);
/** A command's one final answer (what is stored for redeliveries). */
export const FinalResultSchema = z.discriminatedUnion("status", [SucceededResultSchema, FailedResultSchema]);
export type Result = z.infer<typeof ResultSchema>;
export type FinalResult = z.infer<typeof FinalResultSchema>;
