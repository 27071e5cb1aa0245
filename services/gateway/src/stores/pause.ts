import { PAUSE_KEY, RemediationPauseSchema, activePause, type RemediationPause } from "@iaas/contracts";
import { decodeJson, encodeJson, type KV } from "@iaas/runtime";

/**
 * The pause of automatic remediation, in the `iaas_remediation_control` bucket: the gateway is
 * the only service that may write it (an admin's `/iaas remediation pause|resume`), remediation
 * reads it before each alarm. A pause past its `until` is no pause: nothing has to remove it.
 */
export class PauseStore {
  constructor(private readonly kv: KV) {}

  /** The pause in force at `now`, if any. */
  async get(now: number): Promise<RemediationPause | undefined> {
    const e = await this.kv.get(PAUSE_KEY);
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    try {
      return activePause(decodeJson(e.value), now);
    } catch {
      return undefined;
    }
  }

  async set(p: RemediationPause): Promise<void> {
    await this.kv.put(PAUSE_KEY, encodeJson(RemediationPauseSchema.parse(p)));
  }

  async clear(): Promise<void> {
    await this.kv.delete(PAUSE_KEY);
  }
}
