import type { RemediationPause } from "@iaas/contracts";
import { remediationPausedMessage, remediationResumedMessage, remediationStatusMessage } from "../presentation/views.js";
import type { AuditRow } from "../stores/audit.js";
import type { AnswerEnv, RecordOf } from "./verb.js";

/**
 * An audit record of an alarm remediation did not act on because of this pause: since it began,
 * and in its vCenter when it covers one (a record names its vCenter unless it is the default one).
 */
const skippedForPause = (p: RemediationPause) => (row: AuditRow) =>
  row.kind === "other" &&
  row.record.kind === "remediation" &&
  row.record.reason === "paused" &&
  row.record.at >= p.at &&
  (p.vcenter === undefined || (row.record.vcenter ?? "default") === p.vcenter);

async function skippedSince(p: RemediationPause, env: AnswerEnv) {
  return env.audit.latest({ match: skippedForPause(p) });
}

const where = (vcenter: string | undefined) => (vcenter === undefined ? "" : ` in vCenter ${vcenter}`);

/**
 * `/iaas remediation pause|resume|status` (IT admins: the policy's `remediation` command id).
 * A pause is a value in the `iaas_remediation_control` bucket, written here only: `pause` for
 * every vCenter, `pause.<vcenter>` for one (`vc=<vcenter>`). Remediation reads both before each
 * alarm, so a pause holds across restarts of either service and ends by itself at its end time.
 * Every change is audited as `remediation.pause|resume`.
 */
export const remediation: RecordOf<"remediation"> = {
  kind: "remote",
  ids: ["remediation"],
  label: (cmd) => `remediation.${cmd.action}`,
  answer: async (cmd, env) => {
    const now = env.now();
    switch (cmd.action) {
      case "pause": {
        const current = await env.pause.get(now, cmd.vcenter);
        const p: RemediationPause = {
          // A pause that is extended keeps its start, so status still lists every alarm it held back.
          at: current?.at ?? new Date(now).toISOString(),
          until: new Date(now + cmd.durationMs).toISOString(),
          by: env.actor.userId,
          ...(cmd.reason !== undefined ? { reason: cmd.reason } : {}),
          ...(cmd.vcenter !== undefined ? { vcenter: cmd.vcenter } : {}),
        };
        await env.pause.set(p);
        env.audit.succeeded("remediation.pause", undefined, `remediation paused${where(p.vcenter)} until ${p.until}${p.reason ? `: ${p.reason}` : ""}`);
        return remediationPausedMessage(p, current !== undefined);
      }
      case "resume": {
        const current = await env.pause.get(now, cmd.vcenter);
        if (!current) return remediationResumedMessage(undefined, undefined, cmd.vcenter);
        const skipped = await skippedSince(current, env);
        await env.pause.clear(cmd.vcenter);
        env.audit.succeeded("remediation.resume", undefined, `remediation resumed${where(cmd.vcenter)} (it was paused until ${current.until})`);
        return remediationResumedMessage(current, skipped, cmd.vcenter, cmd.vcenter === undefined ? undefined : await env.pause.get(now));
      }
      case "status": {
        const pauses = await env.pause.all(now);
        const withSkipped = await Promise.all(pauses.map(async (p) => ({ pause: p, skipped: await skippedSince(p, env) })));
        return remediationStatusMessage(withSkipped, env.policy.remediation);
      }
    }
  },
};
