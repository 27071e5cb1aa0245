import { PAUSE_KEY, activePause, pauseKey, type RemediationPause } from "@iaas/contracts";
import { decodeJson, type KV, type Logger } from "@iaas/runtime";

/**
 * The pause an admin set with `/iaas remediation pause` (the `iaas_remediation_control` bucket,
 * read only here: only the gateway writes it) that covers `vcenter` at `now`: the pause of every
 * vCenter or that vCenter's own, whichever ends later. A pause past its end counts as none, so it
 * ends by itself without a timer. A value that cannot be read is logged and counts as none. Read
 * before every alarm, so a pause or a resume applies to the next one.
 */
export async function pauseInForce(kv: KV, now: number, log: Logger, vcenter = "default"): Promise<RemediationPause | undefined> {
  const found = await Promise.all([PAUSE_KEY, pauseKey(vcenter)].map((key) => readPause(kv, key, now, log)));
  let best: RemediationPause | undefined;
  for (const p of found) if (p && (!best || Date.parse(p.until) > Date.parse(best.until))) best = p;
  return best;
}

async function readPause(kv: KV, key: string, now: number, log: Logger): Promise<RemediationPause | undefined> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
  let raw: unknown;
  try {
    raw = decodeJson(e.value);
  } catch {
    log.warn({ key }, "a remediation pause cannot be read; acting as if there were none");
    return undefined;
  }
  return activePause(raw, now);
}
