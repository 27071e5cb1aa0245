import type { Actor, Usage, VmCommand } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { QuotaReservations, proxyQuotaCheck, quotaKeysOf, type KV, type Logger, type NatsConnection } from "@iaas/runtime";

export interface VmQuotaDeps {
  nc: NatsConnection;
  policy: Policy;
  log: Logger;
  /** The `iaas_quotas` bucket. */
  kv: KV;
  /** How long a reservation lasts if the command never ends (a crash): the task deadline and a margin. */
  holdMs: number;
  /** Every vCenter: what the VMs use is summed over all of them (usageAcross). */
  vcenters?: readonly string[] | undefined;
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

  /** Takes `request` for the command on its owner's key (and its team's); throws IAAS_QUOTA_EXCEEDED with the figures when over (unless `unchecked`). */
  async reserve(q: { commandId: string; actor: Actor; team?: string | undefined; request: Usage; call: { timeoutMs: number; requestId: string }; unchecked?: boolean }): Promise<void> {
    await this.reservations.reserve({
      commandId: q.commandId,
      keys: quotaKeysOf(q.actor.userId, q.team),
      request: q.request,
      ttlMs: this.d.holdMs,
      // Unchecked: an approver allowed this request over quota (a `quotaOverrun` rule); it still
      // holds its share, so requests checked meanwhile count it.
      check: q.unchecked ? () => undefined : proxyQuotaCheck(this.d.nc, this.d.policy, { actor: q.actor, team: q.team, request: q.request, call: q.call, vcenters: this.d.vcenters }),
    });
  }

  /** Never throws: a reservation that cannot be released now expires by itself. */
  async release(cmd: VmCommand): Promise<void> {
    if (!makesVm(cmd)) return;
    await this.reservations.release(cmd.id, quotaKeysOf(cmd.actor.userId, cmd.team)).catch((err: unknown) => this.d.log.warn({ err, requestId: cmd.id }, "could not release a quota reservation; it expires by itself"));
  }
}
