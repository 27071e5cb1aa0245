import type { RemediationPause } from "@iaas/contracts";
import { remediationPausedMessage, remediationResumedMessage, remediationStatusMessage } from "../presentation/views.js";
import type { AuditRow } from "../stores/audit.js";
import type { AnswerEnv, RecordOf } from "./verb.js";

/** An audit record of an alarm remediation did not act on because of the pause. */
const skippedForPause = (since: string) => (row: AuditRow) =>
  row.kind === "other" && row.record.kind === "remediation" && row.record.reason === "paused" && row.record.at >= since;

async function skippedSince(p: RemediationPause, env: AnswerEnv) {
  return env.audit.latest({ match: skippedForPause(p.at) });
}

/**
 * `/iaas remediation pause|resume|status` (IT admins: the policy's `remediation` command id).
 * The pause is a value in the `iaas_remediation_control` bucket, written here only; remediation
 * reads it before each alarm, so it holds across restarts of either service, covers every vCenter,
 * and ends by itself at its end time. Every change is audited as `remediation.pause|resume`.
 */
export const remediation: RecordOf<"remediation"> = {
  kind: "remote",
  ids: ["remediation"],
  label: (cmd) => `remediation.${cmd.action}`,
  answer: async (cmd, env) => {
    const now = env.now();
    const current = await env.pause.get(now);
    switch (cmd.action) {
      case "pause": {
        const p: RemediationPause = {
          // A pause that is extended keeps its start, so status still lists every alarm it held back.
          at: current?.at ?? new Date(now).toISOString(),
          until: new Date(now + cmd.durationMs).toISOString(),
          by: env.actor.userId,
          ...(cmd.reason !== undefined ? { reason: cmd.reason } : {}),
        };
        await env.pause.set(p);
        env.audit.succeeded("remediation.pause", undefined, `remediation paused until ${p.until}${p.reason ? `: ${p.reason}` : ""}`);
        return remediationPausedMessage(p, current !== undefined);
      }
      case "resume": {
        if (!current) return remediationResumedMessage(undefined, undefined);
        const skipped = await skippedSince(current, env);
        await env.pause.clear();
        env.audit.succeeded("remediation.resume", undefined, `remediation resumed (it was paused until ${current.until})`);
        return remediationResumedMessage(current, skipped);
      }
      case "status":
        return remediationStatusMessage(current, current ? await skippedSince(current, env) : undefined, env.policy.remediation);
    }
  },
};
