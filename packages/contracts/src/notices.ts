import { z } from "zod";
import { RemediationChangeSchema, RemediationDecisionSchema, RemediationReasonSchema, RemediationRuleSchema } from "./audit.js";
import { IsoTimeSchema } from "./common.js";
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
  kind: z.enum(["remediation.action", "remediation.skip", "remediation.deferred", "remediation.failed", "command.dead-letter"]),
  severity: z.enum(["info", "warning", "error"]),
  /**
   * One line for the channel, in plain text (names between backticks), no Slack markup: the
   * gateway escapes it, since it holds names and error texts that came from outside.
   */
  text: z.string().min(1).max(3000),
  vm: z.string().optional(),
  datastore: z.string().optional(),
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
