import { z } from "zod";
import { IsoTimeSchema, ProxyEndpoints, formatDuration, noticeSubject, type MadeSnapshot, type Notice } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { encodeJson, inVcenter, readKvJson, requestJson, type Jet, type KV, type Logger, type NatsConnection } from "@iaas/runtime";

/**
 * A snapshot's record in `iaas_snapshot_sweep`: claimed by one replica while it deletes it, then
 * done. The key is the VM's and the snapshot's morefs, so each snapshot is deleted at most once,
 * whichever replica sees it first.
 */
const SweepRecordSchema = z.strictObject({
  status: z.enum(["claimed", "done"]),
  by: z.string().max(128),
  at: IsoTimeSchema,
  vm: z.string().max(255),
  snapshot: z.string().max(255),
  owner: z.string().max(32),
  removed: z.boolean().optional(),
});
type SweepRecord = z.infer<typeof SweepRecordSchema>;

export interface SnapshotSweepDeps {
  nc: NatsConnection;
  jet: Jet;
  /** The `iaas_snapshot_sweep` bucket. */
  kv: KV;
  policy: Policy;
  log: Logger;
  /** Time between rounds. */
  intervalMs: number;
  /** Deadline of the read of every VM's snapshots. */
  lookupTimeoutMs: number;
  /** Deadline of one snapshot removal; a claim older than this and a margin is taken over. */
  taskTimeoutMs: number;
  /** This replica's name in its claims (for operators reading the bucket). */
  instance: string;
  /** Every vCenter whose snapshots it sweeps (VCENTERS, `default` first); the default one when unset. */
  vcenters?: readonly string[] | undefined;
  now?: () => number;
}

/** The vCenter a round is in: its id, the `vcenter` of its proxy requests, and the prefix of its keys (none for the default one, as before there were several). */
interface Where {
  id: string;
  req: { vcenter?: string };
  prefix: string;
}

/** A claim left by a replica that died lasts this long past the task deadline before another takes it over. */
const CLAIM_MARGIN_MS = 60_000;

/** What a sweeper did since it started (for tests and logs). */
export interface SweepStats {
  rounds: number;
  /** Snapshots this replica claimed (and so tried to delete). */
  claimed: number;
  /** Snapshots it deleted. */
  deleted: number;
  failed: number;
}

/**
 * The retention sweep of snapshots iaas made. Each round reads from vCenter (through the proxy)
 * every snapshot whose description carries iaas's mark and which is older than the policy's
 * `snapshots.maxAge`, and deletes each one once: a replica first claims it in the bucket (KV
 * create, or a compare-and-set over a claim whose holder died), so replicas never both act; the
 * removal names the snapshot by moref and name, so a snapshot that changed since the read is left
 * alone. The owner is told (notice `snapshot.swept`, a DM). Snapshots made outside iaas carry no
 * mark and are never read as candidates. The state is in NATS: a restart forgets nothing but the
 * timer, and the next round starts from vCenter's truth again.
 */
export class SnapshotSweeper {
  readonly stats: SweepStats = { rounds: 0, claimed: 0, deleted: 0, failed: 0 };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: SnapshotSweepDeps) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  start(): void {
    this.stopped = false;
    this.schedule(Math.min(this.d.intervalMs, 1000));
  }

  /** Stops the timer and waits for a round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .catch((err: unknown) => this.d.log.warn({ err }, "snapshot sweep round failed; trying again next round"))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.d.intervalMs);
        });
    }, ms);
    this.timer.unref();
  }

  /**
   * One round: read the aged snapshots iaas made in every vCenter, delete each one this replica
   * manages to claim. A vCenter that cannot be read does not hold up the others; the round then
   * fails, and the next one tries again.
   */
  async round(): Promise<void> {
    const maxAge = this.d.policy.snapshots.maxAge;
    const before = new Date(this.now() - maxAge).toISOString();
    let failed: unknown;
    for (const id of this.d.vcenters?.length ? this.d.vcenters : ["default"]) {
      if (this.stopped) break;
      // Another vCenter's snapshots are keyed (claims, notices) by its id too: morefs repeat across vCenters.
      const at: Where = id === "default" ? { id, req: {}, prefix: "" } : { id, req: inVcenter(id), prefix: `${id}.` };
      try {
        const { snapshots } = await requestJson(this.d.nc, ProxyEndpoints.snapshotsMade, { ...at.req, before }, { timeoutMs: this.d.lookupTimeoutMs });
        for (const s of snapshots) {
          if (this.stopped) break;
          await this.sweepOne(s, maxAge, at);
        }
      } catch (err) {
        failed ??= err;
      }
    }
    if (failed !== undefined) throw failed;
    this.stats.rounds++;
  }

  private async sweepOne(s: MadeSnapshot, maxAge: number, at: Where): Promise<void> {
    const key = `${at.prefix}${s.vmMoref}.${s.moref}`;
    const claim = await this.claim(key, s);
    if (!claim) return;
    this.stats.claimed++;
    const log = this.d.log.child({ vm: s.vm, snapshot: s.name, moref: s.moref, ...(at.prefix ? { vcenter: at.id } : {}) });
    try {
      const { removed } = await requestJson(
        this.d.nc,
        ProxyEndpoints.snapshotRemove,
        { ...at.req, vm: s.vmPath ?? s.vm, name: s.name, moref: s.moref, timeoutMs: this.d.taskTimeoutMs },
        { timeoutMs: this.d.taskTimeoutMs + 5_000, requestId: `sweep-${at.prefix.replace(".", "-")}${s.moref}` },
      );
      if (removed) {
        this.stats.deleted++;
        log.info({ owner: s.madeBy.owner }, "deleted a snapshot older than the policy keeps");
      }
      // A takeover that finds it gone may follow a replica that deleted it and died before telling
      // the owner: tell them now (the notice id is the same, so a notice already sent is not sent again).
      if (removed || claim.takeover) await this.tell(s, maxAge, at);
      await this.d.kv.update(key, JSON.stringify(this.record(s, "done", removed)), claim.revision).catch((err: unknown) => log.warn({ err }, "could not mark the swept snapshot done; its claim lapses and a later round finds it gone"));
    } catch (err) {
      this.stats.failed++;
      log.warn({ err }, "could not delete an old snapshot; a later round tries again");
      // Give the claim up, so the next round (of any replica) tries again at once.
      await this.d.kv.delete(key, { previousSeq: claim.revision }).catch(() => undefined);
    }
  }

  private record(s: MadeSnapshot, status: SweepRecord["status"], removed?: boolean): SweepRecord {
    return { status, by: this.d.instance, at: new Date(this.now()).toISOString(), vm: s.vm.slice(0, 255), snapshot: s.name.slice(0, 255), owner: s.madeBy.owner, ...(removed !== undefined ? { removed } : {}) };
  }

  /**
   * Claims the snapshot for this replica: a new record, or a compare-and-set over a claim whose
   * holder has had longer than a removal takes. Undefined when another replica holds it or it is done.
   */
  private async claim(key: string, s: MadeSnapshot): Promise<{ revision: number; takeover: boolean } | undefined> {
    const mine = JSON.stringify(this.record(s, "claimed"));
    try {
      return { revision: await this.d.kv.create(key, mine), takeover: false };
    } catch {
      // There is a record: read it below.
    }
    const prior = await readKvJson(this.d.kv, key, SweepRecordSchema, this.d.log, "snapshot sweep record");
    if (!prior || prior.value.status === "done") return undefined;
    if (this.now() - Date.parse(prior.value.at) < this.d.taskTimeoutMs + CLAIM_MARGIN_MS) return undefined;
    try {
      return { revision: await this.d.kv.update(key, mine, prior.revision), takeover: true };
    } catch {
      return undefined; // another replica took it over first
    }
  }

  private async tell(s: MadeSnapshot, maxAge: number, at: Where): Promise<void> {
    const notice: Notice = {
      id: `snapshot-swept-${at.prefix.replace(".", "-")}${s.vmMoref}-${s.moref}`,
      kind: "snapshot.swept",
      severity: "info",
      text: `Deleted the snapshot \`${s.name}\` of \`${s.vm}\`${at.prefix ? ` in vCenter \`${at.id}\`` : ""}: iaas took it for you on ${s.createdAt.slice(0, 16).replace("T", " ")} UTC, and the policy keeps snapshots for ${formatDuration(maxAge)}.`.slice(0, 3000),
      vm: s.vm,
      cause: s.madeBy.requestId,
      to: s.madeBy.owner,
      at: new Date(this.now()).toISOString(),
    };
    await this.d.jet.js.publish(noticeSubject(notice.kind), encodeJson(notice), { msgID: notice.id });
  }
}
