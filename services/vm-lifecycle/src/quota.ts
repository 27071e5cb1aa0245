import { IaasError, ProxyEndpoints, type VmCommand } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { QuotaReservations, proxyQuotaCheck, quotaKeysOf, quotaShareOf, requestJson, type KV, type Logger, type NatsConnection } from "@iaas/runtime";

export interface VmQuotaDeps {
  nc: NatsConnection;
  policy: Policy;
  log: Logger;
  /** The `iaas_quotas` bucket. */
  kv: KV;
  /** How long a reservation lasts if the command never ends (a crash): the task deadline and a margin. */
  holdMs: number;
  lookupTimeoutMs: number;
}

type MakesVm = Extract<VmCommand, { action: "create" | "clone" | "deploy" }>;
const makesVm = (cmd: VmCommand): cmd is MakesVm => cmd.action === "create" || cmd.action === "clone" || cmd.action === "deploy";

/**
 * The second line of quotas, where the VM is made. The gateway reserved the share of a command
 * from Slack before publishing it; `reserve` takes the same reservation by command id (a no-op
 * then, apart from moving its expiry to this service's task deadline), and for a command
 * published straight on NATS it is the check and the reservation. `release` gives the share back
 * when the command ends: after success the proxy already counts the new VM, after a failure or a
 * refusal nothing was made.
 */
export class VmQuota {
  private readonly reservations: QuotaReservations;

  constructor(private readonly d: VmQuotaDeps) {
    this.reservations = new QuotaReservations(d.kv, { log: d.log });
  }

  async reserve(cmd: VmCommand): Promise<void> {
    if (!makesVm(cmd)) return;
    const call = { timeoutMs: this.d.lookupTimeoutMs, requestId: cmd.id };
    const share = await quotaShareOf(this.d.nc, this.d.policy, cmd, call);
    if (!share) return;
    try {
      await this.reservations.reserve({
        commandId: cmd.id,
        keys: share.keys,
        request: share.request,
        ttlMs: this.d.holdMs,
        check: proxyQuotaCheck(this.d.nc, this.d.policy, { actor: cmd.actor, team: share.team, request: share.request, call }),
      });
    } catch (err) {
      if (!(err instanceof IaasError && err.code === "IAAS_QUOTA_EXCEEDED") || !(await this.ownsVmNamed(cmd, call))) throw err;
      // The actor already has a VM of the new name: an earlier delivery of this command made it
      // (and released its share, or its share expired, before the command was recorded as done),
      // so the usage counts it already. Nothing more can be made: the proxy returns that VM to
      // this command, or refuses a duplicate name.
      this.d.log.info({ requestId: cmd.id, vm: cmd.name }, "over quota, but the VM of this name is the actor's already; not counting it twice");
    }
  }

  private async ownsVmNamed(cmd: MakesVm, call: { timeoutMs: number; requestId: string }): Promise<boolean> {
    try {
      const { vm } = await requestJson(this.d.nc, ProxyEndpoints.vmGet, { vm: cmd.name }, call);
      return vm.owner === cmd.actor.userId;
    } catch {
      return false;
    }
  }

  /** Never throws: a reservation that cannot be released now expires by itself. */
  async release(cmd: VmCommand): Promise<void> {
    if (!makesVm(cmd)) return;
    await this.reservations.release(cmd.id, quotaKeysOf(cmd.actor.userId, cmd.team)).catch((err: unknown) => this.d.log.warn({ err, requestId: cmd.id }, "could not release a quota reservation; it expires by itself"));
  }
}
