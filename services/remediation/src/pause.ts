import { PAUSE_KEY, activePause, type RemediationPause } from "@iaas/contracts";
import { decodeJson, type KV, type Logger } from "@iaas/runtime";

/**
 * The pause an admin set with `/iaas remediation pause` (the `iaas_remediation_control` bucket,
 * read only here: only the gateway writes it), if it is still in force at `now`. A pause past its
 * end counts as none, so it ends by itself without a timer. A value that cannot be read is logged
 * and counts as none. Read before every alarm, so a pause or a resume applies to the next one.
 */
export async function pauseInForce(kv: KV, now: number, log: Logger): Promise<RemediationPause | undefined> {
  const e = await kv.get(PAUSE_KEY);
  if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
  let raw: unknown;
  try {
    raw = decodeJson(e.value);
  } catch {
    log.warn({ key: PAUSE_KEY }, "the remediation pause cannot be read; acting as if there were none");
    return undefined;
  }
  return activePause(raw, now);
}
