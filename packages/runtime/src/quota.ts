import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { CommandIdSchema, IaasError, IsoTimeSchema, ProxyEndpoints, UsageSchema, type Actor, type Command, type Usage } from "@iaas/contracts";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "./jetstream.js";
import type { Logger } from "./log.js";
import { inVcenter } from "./guard.js";
import { requestJson } from "./micro.js";
import type { NatsConnection } from "./nats.js";

/** One request's share of a quota, held from its check until it has finished (or expired). */
export const ReservationSchema = z.strictObject({ usage: UsageSchema, expiresAt: IsoTimeSchema });
/** The value of one key of the `iaas_quotas` bucket: the reservations held on that owner or team, by command id. */
export const QuotaEntrySchema = z.strictObject({ reservations: z.record(CommandIdSchema, ReservationSchema) });
export type QuotaEntry = z.infer<typeof QuotaEntrySchema>;

/** The key of an owner's reservations (`user.U012ABC`) and of a team's (`team.S012ABC`, `team.platform`). */
export const quotaKey = {
  user: (userId: string) => `user.${userId}`,
  team: (team: string) => `team.${team}`,
};

/** The keys a request for `owner` (and `team`) reserves on, in the order they are taken: user first. */
export function quotaKeysOf(owner: string, team?: string): string[] {
  return team === undefined ? [quotaKey.user(owner)] : [quotaKey.user(owner), quotaKey.team(team)];
}

/**
 * Decides whether `request` fits on `key` when other requests hold `held` there: reads what
 * exists (fresh, from vcenter-proxy) and throws (IAAS_QUOTA_EXCEEDED with the figures) when
 * existing + held + request is over the limit.
 */
export type QuotaCheck = (key: string, held: Usage) => Promise<void> | void;

export interface QuotaReservationsOptions {
  log: Logger;
  now?: () => number;
  /** Rounds of read-check-write on one key before giving up (IAAS_UNAVAILABLE, retryable). */
  maxAttempts?: number;
  /** Timeout of one KV call. */
  timeoutMs?: number;
  /**
   * How long a KV call that failed (no answer: a NATS node lost, the bucket's leader being elected)
   * is tried again before the reservation gives up with IAAS_UNAVAILABLE; default 60 s (a stream leader
   * elected on a loaded 3-node cluster took longer than 15 s once).
   */
  retryForMs?: number;
}

type Current = { entry: QuotaEntry; revision: number };

const ZERO: Usage = { vms: 0, cpu: 0, memoryGB: 0, diskGB: 0 };
const add = (a: Usage, b: Usage): Usage => ({ vms: a.vms + b.vms, cpu: a.cpu + b.cpu, memoryGB: a.memoryGB + b.memoryGB, diskGB: a.diskGB + b.diskGB });

/**
 * Quota reservations in the `iaas_quotas` bucket, shared by every gateway replica and
 * vm-lifecycle instance. A request that passed its quota check holds its share under its command
 * id until it has finished, so two requests checked at once cannot both take the last share.
 *
 * Why this is race-free: for each key the entry and its revision are read BEFORE the usage is
 * read (inside `check`), and the new entry is written by compare-and-set on that revision. Any
 * write to the key in between (another request's reservation, or a release, which a command
 * makes only once vcenter-proxy counts its VM) makes the write fail, and the round starts again
 * with a fresh read of both. So a write that lands was checked against every reservation and
 * every finished VM there were at that revision.
 *
 * Reservations carry an expiry, so a service that crashes between reserving and releasing holds
 * the share only until then; expired ones are ignored and removed on the next write.
 */
export class QuotaReservations {
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly retryForMs: number;

  constructor(
    private readonly kv: KV,
    private readonly opts: QuotaReservationsOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxAttempts = opts.maxAttempts ?? 40;
    this.timeoutMs = opts.timeoutMs ?? 2_000;
    this.retryForMs = opts.retryForMs ?? 60_000;
  }

  /**
   * `call`, tried again with back-off while it fails for want of NATS (not a lost compare-and-set:
   * that is a new round) until `retryForMs` has passed. Safe: a put that landed but whose answer
   * was lost is seen by the next round's read (the command already holds its share there).
   */
  private async kvCall<T>(what: string, key: string, call: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
      try {
        return await call();
      } catch (err) {
        if (isWrongLastSequence(err) || Date.now() + pause > deadline) throw err;
        this.opts.log.warn({ key, err: IaasError.from(err, "IAAS_UNAVAILABLE").message, retryInMs: pause }, `the quota bucket did not answer a ${what}; trying again`);
        await sleep(pause);
      }
    }
  }

  /**
   * Reserves `request` on every key (in order) for `commandId`, each after `check` passed with
   * what other unexpired reservations hold there. Idempotent by command id: where the command holds
   * a reservation already (a redelivery, or vm-lifecycle after the gateway), nothing is checked or
   * counted again; only its expiry is moved later if `ttlMs` asks for more. If a key fails (over
   * quota, or NATS failing), the command's reservations on all its keys are released before the
   * error is thrown: the command will not run on them (a retry reserves again, with a check).
   */
  async reserve(a: { commandId: string; keys: readonly string[]; request: Usage; ttlMs: number; check: QuotaCheck }): Promise<void> {
    try {
      for (const key of a.keys) await this.reserveOne(key, a);
    } catch (err) {
      await this.release(a.commandId, a.keys).catch((e: unknown) => this.opts.log.warn({ err: e, commandId: a.commandId }, "could not release a quota reservation after a failed reserve; it expires"));
      throw err;
    }
  }

  /** Drops the command's reservation on every key. Safe to repeat; a key without one is left alone. */
  async release(commandId: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      await this.rounds(key, async (cur) => {
        if (!Object.hasOwn(cur.entry.reservations, commandId)) return { done: true };
        const reservations = this.live(cur.entry);
        delete reservations[commandId];
        return { write: { reservations } };
      });
    }
  }

  /** What unexpired reservations hold on `key`, and how many there are (for `/iaas quota`). */
  async held(key: string): Promise<{ usage: Usage; count: number }> {
    const live = Object.values(this.live((await this.read(key)).entry));
    return { usage: live.reduce((s, r) => add(s, r.usage), ZERO), count: live.length };
  }

  private async reserveOne(key: string, a: { commandId: string; request: Usage; ttlMs: number; check: QuotaCheck }): Promise<void> {
    await this.rounds(key, async (cur) => {
      const reservations = this.live(cur.entry);
      const expiresAt = new Date(this.now() + a.ttlMs).toISOString();
      const own = reservations[a.commandId];
      if (own) {
        if (Date.parse(own.expiresAt) >= Date.parse(expiresAt)) return { done: true };
        // Already counted: only the expiry moves, no check.
        return { write: { reservations: { ...reservations, [a.commandId]: { ...own, expiresAt } } } };
      }
      const held = Object.values(reservations).reduce((s, r) => add(s, r.usage), ZERO);
      await a.check(key, held);
      return { write: { reservations: { ...reservations, [a.commandId]: { usage: a.request, expiresAt } } } };
    });
  }

  /**
   * Read → decide → compare-and-set until a write lands or nothing is to be written. A lost race
   * (the revision moved) starts the round again after a short random pause, so contenders spread.
   */
  private async rounds(key: string, decide: (cur: Current) => Promise<{ done: true } | { write: QuotaEntry }>): Promise<void> {
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const cur = await this.read(key);
      const next = await decide(cur);
      if ("done" in next) return;
      const data = JSON.stringify(QuotaEntrySchema.parse(next.write));
      try {
        // `update` refuses revision 0; put with the expected last sequence is the same CAS and takes it.
        await this.kvCall("write", key, () => this.kv.put(key, data, { previousSeq: cur.revision, timeout: this.timeoutMs }));
        return;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw IaasError.from(err, "IAAS_UNAVAILABLE");
        this.opts.log.debug({ key, attempt }, "quota entry changed meanwhile; reading it again");
        await sleep(Math.random() * Math.min(100, 5 * attempt) + 1);
      }
    }
    throw new IaasError("IAAS_UNAVAILABLE", "Too many requests are using the same quota at this moment; nothing was done. Try again in a moment.");
  }

  /**
   * The entry and the revision to compare-and-set against: the key's last message, even a delete
   * marker (a purge leaves one), or 0 when it has none (the bucket's expiry removed it, or it never
   * existed), which makes the write succeed only if nobody wrote the key meanwhile. A missing,
   * deleted or unreadable entry holds no reservations.
   */
  private async read(key: string): Promise<Current> {
    const e = await this.kvCall("read", key, () => this.kv.get(key)).catch((err: unknown) => {
      throw IaasError.from(err, "IAAS_UNAVAILABLE");
    });
    if (!e) return { entry: { reservations: {} }, revision: 0 };
    if (e.operation !== "PUT" || e.length === 0) return { entry: { reservations: {} }, revision: e.revision };
    let raw: unknown;
    try {
      raw = e.json();
    } catch {
      raw = undefined;
    }
    const r = QuotaEntrySchema.safeParse(raw);
    if (!r.success) {
      this.opts.log.warn({ key }, "ignoring an unreadable quota entry; the next write replaces it");
      return { entry: { reservations: {} }, revision: e.revision };
    }
    return { entry: r.data, revision: e.revision };
  }

  private live(entry: QuotaEntry): QuotaEntry["reservations"] {
    const now = this.now();
    return Object.fromEntries(Object.entries(entry.reservations).filter(([, r]) => Date.parse(r.expiresAt) > now));
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

// ---- the check and the share, as the gateway and vm-lifecycle both make them --------------------

/** The part of the policy a quota check needs (`Policy` from @iaas/policy has it). */
export interface QuotaPolicy {
  resolveSize(name?: string): { cpu: number; memoryGB: number; diskGB: number };
  quotaOf(kind: "user" | "team", id: string): Partial<Usage>;
  checkQuota(a: { actor: Actor; request: Usage; user: Usage; team?: { id: string; used: Usage } | undefined }): void;
}

type Call = { timeoutMs: number; requestId?: string; traceparent?: string };

/** The quota share of one new VM of a policy size (create, deploy). */
export const shareOfSize = (size: { cpu: number; memoryGB: number; diskGB: number }): Usage => ({ vms: 1, cpu: size.cpu, memoryGB: size.memoryGB, diskGB: size.diskGB });
/** The quota share of a clone: one VM as big as its source, disks included (as vm-usage counts them). */
export const shareOfSource = (source: { numCpu: number; memoryMB: number; disks: readonly { capacityGB: number }[] }): Usage => ({
  vms: 1,
  cpu: source.numCpu,
  memoryGB: source.memoryMB / 1024,
  diskGB: source.disks.reduce((s, d) => s + d.capacityGB, 0),
});

/**
 * What a command takes from its owner's (and team's) quota, or undefined when it takes nothing
 * (every command but create, clone and deploy). Create and deploy: one VM of the policy size.
 * Clone: one VM as big as its source (vCPU, memory, disks), read from vcenter-proxy.
 */
export async function quotaShareOf(nc: NatsConnection, policy: QuotaPolicy, cmd: Command, call: Call): Promise<{ request: Usage; keys: string[]; team?: string } | undefined> {
  if (cmd.area !== "vm" || (cmd.action !== "create" && cmd.action !== "clone" && cmd.action !== "deploy")) return undefined;
  // A quota without a single limit holds nothing back: no reservation, and vCenter is not asked.
  const limited = (kind: "user" | "team", id: string) => Object.values(policy.quotaOf(kind, id)).some((v) => v !== undefined);
  const userLimited = limited("user", cmd.actor.userId);
  const teamLimited = cmd.team !== undefined && limited("team", cmd.team);
  if (!userLimited && !teamLimited) return undefined;
  const request = cmd.action === "clone" ? shareOfSource((await requestJson(nc, ProxyEndpoints.vmInfo, { vm: cmd.source, ...inVcenter(cmd.vcenter) }, call)).vm) : shareOfSize(policy.resolveSize(cmd.size));
  const keys = quotaKeysOf(cmd.actor.userId, teamLimited ? cmd.team : undefined).filter((k) => userLimited || k !== quotaKey.user(cmd.actor.userId));
  return { request, keys, ...(teamLimited ? { team: cmd.team } : {}) };
}

/**
 * The check of one key: what the owner's (or the team's) VMs use now, asked fresh from
 * vcenter-proxy (which counts every create, clone and delete it has finished), plus what other
 * requests hold, against the policy's limits. Throws IAAS_QUOTA_EXCEEDED with the figures.
 */
export function proxyQuotaCheck(nc: NatsConnection, policy: QuotaPolicy, a: { actor: Actor; team?: string | undefined; request: Usage; call: Call; vcenters?: readonly string[] | undefined }): QuotaCheck {
  return async (key, held) => {
    if (key === quotaKey.user(a.actor.userId)) {
      const { owner } = await usageAcross(nc, a.vcenters, { owner: a.actor.userId }, a.call);
      policy.checkQuota({ actor: a.actor, request: a.request, user: add(owner ?? ZERO, held) });
      return;
    }
    if (a.team !== undefined && key === quotaKey.team(a.team)) {
      const { team } = await usageAcross(nc, a.vcenters, { team: a.team }, a.call);
      // The owner's own share passed on the user key, which is always taken first.
      policy.checkQuota({ actor: a.actor, request: a.request, user: ZERO, team: { id: a.team, used: add(team ?? ZERO, held) } });
      return;
    }
    throw new IaasError("IAAS_INTERNAL", `no quota check for the key ${key}`);
  };
}

/**
 * What an owner's (and/or a team's) VMs use in every vCenter of `vcenters`, summed: a quota is
 * one for all of them. Without `vcenters` (or with only `default`), the default vCenter's
 * vm-usage as it is, one request as before there were several.
 */
export async function usageAcross(nc: NatsConnection, vcenters: readonly string[] | undefined, q: { owner?: string; team?: string }, call: Call): Promise<{ owner?: Usage; team?: Usage }> {
  const ids = vcenters === undefined || vcenters.length === 0 ? ["default"] : vcenters;
  return sumUsageAnswers(await Promise.all(ids.map((id) => requestJson(nc, ProxyEndpoints.vmUsage, { ...q, ...inVcenter(id === "default" ? undefined : id) }, call))));
}

/** vm-usage answers of several vCenters added up, owner and team apart (one answer: itself). */
export function sumUsageAnswers(answers: readonly { owner?: Usage; team?: Usage }[]): { owner?: Usage; team?: Usage } {
  if (answers.length === 1) return answers[0]!;
  const sum = (pick: (u: { owner?: Usage; team?: Usage }) => Usage | undefined): Usage | undefined => {
    const parts = answers.map(pick).filter((u): u is Usage => u !== undefined);
    return parts.length === 0 ? undefined : parts.reduce(add, ZERO);
  };
  const owner = sum((u) => u.owner);
  const team = sum((u) => u.team);
  return { ...(owner ? { owner } : {}), ...(team ? { team } : {}) };
}
