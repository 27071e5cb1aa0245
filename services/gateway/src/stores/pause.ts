import { PAUSE_KEY, RemediationPauseSchema, activePause, pauseKey, type RemediationPause } from "@iaas/contracts";
import { decodeJson, encodeJson, kvKeys, type KV } from "@iaas/runtime";

/**
 * The pauses of automatic remediation, in the `iaas_remediation_control` bucket: the gateway is
 * the only service that may write them (an admin's `/iaas remediation pause|resume`), remediation
 * reads them before each alarm. `pause` covers every vCenter, `pause.<vcenter>` one of them. A
 * pause past its `until` is no pause: nothing has to remove it.
 */
export class PauseStore {
  constructor(private readonly kv: KV) {}

  /** The pause in force at `now` of every vCenter (no `vcenter`) or of that one vCenter only. */
  async get(now: number, vcenter?: string): Promise<RemediationPause | undefined> {
    return this.read(pauseKey(vcenter), now);
  }

  /** Every pause in force at `now`: the one of every vCenter first, then by vCenter. */
  async all(now: number): Promise<RemediationPause[]> {
    const keys = [PAUSE_KEY, ...(await kvKeys(this.kv, `${PAUSE_KEY}.>`)).sort()];
    const found = await Promise.all(keys.map((k) => this.read(k, now)));
    return found.filter((p): p is RemediationPause => p !== undefined);
  }

  async set(p: RemediationPause): Promise<void> {
    await this.kv.put(pauseKey(p.vcenter), encodeJson(RemediationPauseSchema.parse(p)));
  }

  async clear(vcenter?: string): Promise<void> {
    await this.kv.delete(pauseKey(vcenter));
  }

  private async read(key: string, now: number): Promise<RemediationPause | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    try {
      return activePause(decodeJson(e.value), now);
    } catch {
      return undefined;
    }
  }
}
