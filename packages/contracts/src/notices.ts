import { z } from "zod";
import { VcenterIdSchema } from "./vcenters.js";
import { RemediationChangeSchema, RemediationDecisionSchema, RemediationReasonSchema, RemediationRuleSchema } from "./audit.js";
import { IsoTimeSchema, SlackChannelIdSchema, SlackUserIdSchema } from "./common.js";
import { Subjects } from "./subjects.js";
import { token } from "./tokens.js";

/**
 * `iaas.notify.<kind>`: something the Slack notify channel should hear about, from remediation
 * (an action taken, or a decision not to act) or from the command pipeline (a dead letter).
 * Published to core NATS and to the audit stream; the gateway posts it with chat.postMessage.
 */
export const NoticeSchema = z.strictObject({
  /** Stable id; the gateway posts each id once. */
  id: z.string().regex(/^[A-Za-z0-9_:.-]{8,128}$/),
  kind: z.enum([
    "remediation.action",
    "remediation.skip",
    "remediation.deferred",
    "remediation.failed",
    "command.dead-letter",
    // Leases (lease-keeper): a reminder before the end, the power-off at the end, the delete
    // (or keep) after the grace. Sent to the owner (`to`), with buttons.
    "lease.reminder",
    "lease.expired",
    "lease.deleted",
    "lease.kept",
    "lease.invalid",
    // Snapshot retention (vm-lifecycle): an old snapshot iaas made was deleted.
    "snapshot.swept",
  ]),
  severity: z.enum(["info", "warning", "error"]),
  /**
   * One line for the channel, in plain text (names between backticks), no Slack markup: the
   * gateway escapes it, since it holds names and error texts that came from outside.
   */
  text: z.string().min(1).max(3000),
  vm: z.string().optional(),
  datastore: z.string().optional(),
  /** The vCenter of the VM or datastore, when it is not the default one. */
  vcenter: VcenterIdSchema.optional(),
  /** The vSphere event or command that caused it. */
  cause: z.string().max(300).optional(),
  // The decision as facts, for remediation's notices (the same as its audit record).
  rule: RemediationRuleSchema.optional(),
  decision: RemediationDecisionSchema.optional(),
  reason: RemediationReasonSchema.optional(),
  /** The alarm that fired, by name. */
  alarm: z.string().max(300).optional(),
  change: RemediationChangeSchema.optional(),
  dryRun: z.boolean().optional(),
  /**
   * Who it is for: a Slack user (posted as a DM, `chat.postMessage` to the user id) or a channel;
   * the notify channel when not given.
   */
  to: z.union([SlackUserIdSchema, SlackChannelIdSchema]).optional(),
  /**
   * Buttons under the text, each running `/iaas <text>` through the normal path as the person
   * who clicks it (same policy, same Confirm): `extend web-01`, `extend web-01 power=on`,
   * `delete web-01`.
   */
  buttons: z
    .array(z.strictObject({ label: z.string().min(1).max(60), text: z.string().min(1).max(300), style: z.enum(["primary", "danger"]).optional() }))
    .max(5)
    .optional(),
  at: IsoTimeSchema,
});
export type Notice = z.infer<typeof NoticeSchema>;

export type NoticeKind = Notice["kind"];

/**
 * The subject of a notice: `iaas.notify.<kind>` with the kind's dots as subject levels
 * (`iaas.notify.remediation.action`), so `iaas.notify.remediation.>` selects remediation's notices.
 */
export function noticeSubject(kind: NoticeKind): string {
  const [first, ...rest] = kind.split(".");
  return [Subjects.notify(first ?? ""), ...rest.map((p) => token(p, "notice kind part"))].join(".");
}
