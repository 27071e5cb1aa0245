import { z } from "zod";
import { VcenterIdSchema } from "./vcenters.js";

/**
 * A pause of automatic remediation (a maintenance window), kept under `PAUSE_KEY` in the
 * `iaas_remediation_control` bucket. Only the gateway (an admin's `/iaas remediation pause`) and
 * the NATS admin may write it; remediation reads it before acting on an alarm. It ends by itself
 * at `until` (readers compare it with their clock; no timer), or when `/iaas remediation resume`
 * deletes it. A pause with no `vcenter` covers every vCenter (key `pause`); one with a `vcenter`
 * covers that vCenter only (key `pause.<vcenter>`). Both may be in force at once.
 */
export const RemediationPauseSchema = z.object({
  /** When it was set (ISO 8601); alarms skipped since then are reported by `status`. */
  at: z.string().datetime(),
  /** When it ends by itself (ISO 8601). */
  until: z.string().datetime(),
  /** The Slack user who set it. */
  by: z.string().min(1).max(40),
  /** Why, as typed (plain text; escaped wherever it is shown). */
  reason: z.string().max(300).optional(),
  /** The vCenter it covers (a VCENTERS id, or `default`); unset: every vCenter. */
  vcenter: VcenterIdSchema.optional(),
});
export type RemediationPause = z.infer<typeof RemediationPauseSchema>;

/** The key of the pause of every vCenter in the `iaas_remediation_control` bucket. */
export const PAUSE_KEY = "pause";

/** The key of a pause: `pause` for every vCenter, `pause.<vcenter>` for one. */
export function pauseKey(vcenter?: string): string {
  return vcenter === undefined ? PAUSE_KEY : `${PAUSE_KEY}.${VcenterIdSchema.parse(vcenter)}`;
}

/** The pause a stored value holds if it is still in force at `now`; undefined when none, expired or unreadable. */
export function activePause(raw: unknown, now: number): RemediationPause | undefined {
  const p = RemediationPauseSchema.safeParse(raw);
  if (!p.success) return undefined;
  return Date.parse(p.data.until) > now ? p.data : undefined;
}
