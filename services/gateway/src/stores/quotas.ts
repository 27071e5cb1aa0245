import type { Command, Usage } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { QuotaReservations, proxyQuotaCheck, quotaShareOf, type KV, type Logger, type NatsConnection } from "@iaas/runtime";

/**
 * How long the gateway's reservation lasts if nothing releases it: long enough for the command
 * to reach vm-lifecycle, which takes the same reservation over (and extends it to its own task
 * deadline) and releases it when the command ends. A command still queued after that is checked
 * again by vm-lifecycle, against what exists then.
 */
export const QUOTA_HOLD_MS = 15 * 60_000;
/** Each look-up of a quota check (vm-usage, the clone source): it runs inside the ack's 3 s. */
const QUOTA_LOOKUP_TIMEOUT_MS = 1_500;

/** A reservation the gateway took for a command it is about to publish. */
export interface QuotaHold {
  commandId: string;
  keys: string[];
}

/**
 * Quotas at the door: before create, clone or deploy is published, the gateway reserves its
 * share (KV compare-and-set in `iaas_quotas`, shared by every replica), so the refusal, with
 * the figures, is in the ack; a request that loses the race to the last share is refused the
 * same way. If publishing fails, the share is released at once.
 */
export class QuotaGate {
  readonly reservations: QuotaReservations;

  constructor(private readonly d: { kv: KV; nc: NatsConnection; policy: Policy; log: Logger; now?: () => number; /** Every vCenter: a quota counts the VMs of all of them. */ vcenters?: readonly string[] }) {
    this.reservations = new QuotaReservations(d.kv, { log: d.log, ...(d.now ? { now: d.now } : {}) });
  }

  /**
   * Reserves the command's share; undefined for a command that takes none. Throws
   * IAAS_QUOTA_EXCEEDED when over, unless `unchecked` (an approver allowed it over quota: the
   * share is still held, so requests checked meanwhile count it).
   */
  async reserve(command: Command, traceparent: string, opts: { unchecked?: boolean } = {}): Promise<QuotaHold | undefined> {
    const call = { timeoutMs: QUOTA_LOOKUP_TIMEOUT_MS, requestId: command.id, traceparent };
    const share = await quotaShareOf(this.d.nc, this.d.policy, command, call);
    if (!share) return undefined;
    await this.reservations.reserve({
      commandId: command.id,
      keys: share.keys,
      request: share.request,
      ttlMs: QUOTA_HOLD_MS,
      check: opts.unchecked ? () => undefined : proxyQuotaCheck(this.d.nc, this.d.policy, { actor: command.actor, team: share.team, request: share.request, call, vcenters: this.d.vcenters }),
    });
    return { commandId: command.id, keys: share.keys };
  }

  /** Gives a share back (the command was not published); a failure only logs: the reservation expires. */
  async release(hold: QuotaHold | undefined): Promise<void> {
    if (!hold) return;
    await this.reservations.release(hold.commandId, hold.keys).catch((err: unknown) => this.d.log.warn({ err, requestId: hold.commandId }, "could not release a quota reservation; it expires by itself"));
  }

  /** The vCenters a quota counts VMs in (usageAcross): every one the gateway knows. */
  get vcenters(): readonly string[] | undefined {
    return this.d.vcenters;
  }

  /** What requests in flight hold on a quota key (`/iaas quota`). */
  held(key: string): Promise<{ usage: Usage; count: number }> {
    return this.reservations.held(key);
  }
}
