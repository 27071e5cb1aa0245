import { z } from "zod";

export const IsoTimeSchema = z.iso.datetime({ offset: true });

/** A command (request) id: also the JetStream Nats-Msg-Id and the last token of `iaas.result.<id>`. */
export const CommandIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, "must be 8-64 of A-Z a-z 0-9 _ -");

export const SlackUserIdSchema = z.string().regex(/^[UW][A-Z0-9]{2,20}$/, "must be a Slack user id like U012ABC");
export const SlackTeamIdSchema = z.string().regex(/^[TE][A-Z0-9]{2,20}$/, "must be a Slack team id like T012ABC");
export const SlackChannelIdSchema = z.string().regex(/^[CGD][A-Z0-9]{2,20}$/, "must be a Slack channel id like C012ABC");

/**
 * A VM's team: a Slack user group id (`S012ABC`) or the name of a team the policy defines
 * (`platform`). Recorded on the VM as the custom attribute `iaas.team`.
 */
export const TeamIdSchema = z
  .string()
  .regex(/^(S[A-Z0-9]{2,20}|[a-z][a-z0-9_-]{0,31})$/, "must be a Slack user group id like S012ABC or a policy team name like platform");
export type TeamId = z.infer<typeof TeamIdSchema>;

/** Who asked. Only ever taken from a verified Slack payload, or set by an operator publishing over NATS. */
export const ActorSchema = z.strictObject({
  userId: SlackUserIdSchema,
  teamId: SlackTeamIdSchema.optional(),
  channelId: SlackChannelIdSchema.optional(),
  /** Slack user groups the user is in, when the gateway resolved them (for policy bindings). */
  groups: z.array(z.string().regex(/^S[A-Z0-9]{2,20}$/)).max(100).optional(),
  via: z.enum(["slack", "nats"]),
});
export type Actor = z.infer<typeof ActorSchema>;

// vSphere object names may hold almost anything, but never wildcards here: the product acts
// on exactly the VM named. Control characters are refused outright.
const NO_WILDCARDS = /^[^*?[\]\u0000-\u001f\u007f]+$/;

/** `<vm>`: an exact VM name, or an inventory path beginning with `/` (e.g. `/DC0/vm/web-01`). */
export const VmRefSchema = z
  .string()
  .min(1, "a VM name is required")
  .max(255, "is longer than 255 characters")
  .regex(NO_WILDCARDS, "must be an exact VM name or an inventory path: wildcards and control characters are not allowed")
  .refine((s) => s.trim() === s, "must not start or end with spaces");
export type VmRef = z.infer<typeof VmRefSchema>;

export const MoRefSchema = z.strictObject({ type: z.string().min(1), value: z.string().min(1) });
export type MoRef = z.infer<typeof MoRefSchema>;

export const PowerStateSchema = z.enum(["poweredOn", "poweredOff", "suspended"]);
export type PowerState = z.infer<typeof PowerStateSchema>;

/** The facts about a VM that results and lists carry. */
export const VmSummarySchema = z.strictObject({
  name: z.string(),
  /** Inventory path, e.g. `/DC0/vm/web-01`. */
  path: z.string().optional(),
  moref: z.string(),
  powerState: PowerStateSchema,
  numCpu: z.number().int().nonnegative(),
  memoryMB: z.number().int().nonnegative(),
  template: z.boolean(),
  /** Slack user id of the owner (custom attribute `iaas.owner`); unset for a VM nobody has adopted. */
  owner: z.string().optional(),
  /** The VM's team (custom attribute `iaas.team`): a Slack user group id or a policy team name. */
  team: z.string().optional(),
  /**
   * The lease's end as the custom attribute `iaas.lease.expires` holds it (ISO 8601 UTC), when it
   * holds a valid time; unset for a VM without a lease.
   */
  leaseExpires: IsoTimeSchema.optional(),
  /**
   * The attribute's text when it is set but is not a valid time (edited by hand): such a VM has
   * no lease in force ("tell IT"), never an expired one. At most 100 characters of it.
   */
  leaseInvalid: z.string().max(100).optional(),
  /** How many snapshots the VM has (the whole tree), when the proxy read them. */
  snapshots: z.number().int().nonnegative().optional(),
});
export type VmSummary = z.infer<typeof VmSummarySchema>;
