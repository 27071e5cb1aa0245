import { z } from "zod";
import { IaasError, RemediationRuleSchema } from "@iaas/contracts";
import { kvKeys, readKvJson, type KV, type Logger } from "@iaas/runtime";

/**
 * What remediation remembers, in the `iaas_remediation` bucket, so that it survives restarts and
 * is shared by every instance:
 *
 * | key | value |
 * |---|---|
 * | `event.<id>` | an event whose decisions are all made and published (redeliveries are dropped) |
 * | `cooldown.<scope>.<vm>` | until when a VM is left alone, and which event (and target) started it |
 * | `cap.<resource>.<vm>` | a VM is at the cap: the notice was sent for this episode |
 * | `pending.<resource>.<vm>` | a change waiting for the VM's next power-off |
 * | `brake` | the times of the actions of the last minute |
 * | `brakeskips.<minute>` | red alarms the brake refused in that minute, and which one sent the summary notice |
 * | `flap.<vm>` | the VM's recent red alarms, and since when it is handed over to people (flapping) |
 *
 * `<vm>` is the VM's moref (`<vcenter>/<moref>` for a VM of a vCenter other than the default one,
 * so the default vCenter's keys are as with one vCenter) and `<id>` the event's Nats-Msg-Id, base64url-encoded (KV keys allow
 * only `A-Z a-z 0-9 - _ = . /`).
 */

const enc = (s: string) => Buffer.from(s, "utf8").toString("base64url");

export type Resource = "cpu" | "memory";
/** Cooldown scopes: resizing and moving a VM are separate (a VM just moved may still be resized). */
export type CooldownScope = "scale" | "move";

const IsoMs = z.number().int().nonnegative();

export const CooldownSchema = z.strictObject({
  /** Epoch ms. */
  until: IsoMs,
  /** The event that started it: its redelivery resumes the same change instead of being refused. */
  eventId: z.string(),
  /** The absolute target, so a resumed change is the same change (applying it twice changes nothing). */
  cpu: z.number().int().positive().optional(),
  memoryMB: z.number().int().positive().optional(),
  datastore: z.string().optional(),
  /** Where the change started from, and how it is made (a decision reason: hot-add, powered-off, restarted, relocated). */
  from: z.union([z.number(), z.string()]).optional(),
  reason: z.string().optional(),
});
export type Cooldown = z.infer<typeof CooldownSchema>;

export const PendingSchema = z.strictObject({
  /** Stable id of this deferral: the notices about it (deferred, applied) derive from it. */
  id: z.string(),
  resource: z.enum(["cpu", "memory"]),
  vm: z.string(),
  moref: z.string(),
  from: z.number().int().nonnegative(),
  /** Absolute target: vCPUs or MB. */
  to: z.number().int().positive(),
  eventId: z.string(),
  alarm: z.string(),
  at: IsoMs,
  /** The VM's vCenter when it is not the default one (a VCENTERS id). */
  vcenter: z.string().optional(),
});
export type Pending = z.infer<typeof PendingSchema>;

const CapSchema = z.strictObject({ since: IsoMs, eventId: z.string(), value: z.number() });
const DoneSchema = z.strictObject({ at: IsoMs });
const BrakeSchema = z.strictObject({ times: z.array(IsoMs) });

const WINDOW_MS = 60_000;

const RedSchema = z.strictObject({ at: IsoMs, eventId: z.string(), alarm: z.string(), held: z.boolean() });
const FlapSchema = z.strictObject({
  reds: z.array(RedSchema),
  /** The hand-over: when, and the event that caused it (its notice). */
  handover: z.strictObject({ at: IsoMs, eventId: z.string() }).optional(),
});
const BrakeSummarySchema = z.strictObject({ rule: RemediationRuleSchema, dryRun: z.boolean(), limit: z.number().int().nonnegative(), first: z.string() });
const BrakeSkipsSchema = z.strictObject({
  skipped: z.number().int().nonnegative(),
  by: z.string(),
  /** What the minute's summary notice says besides the count: the first refusal. */
  summary: BrakeSummarySchema.optional(),
  /** The summary was posted. */
  summarized: z.boolean().optional(),
});
type UnwrittenSkips = { count: number; first: string; summary?: z.infer<typeof BrakeSummarySchema> };
/** A minute the brake refused changes in, for its summary notice. */
export type BrakeMinute = { minute: number; skipped: number; summary: z.infer<typeof BrakeSummarySchema> | undefined; summarized: boolean };

/** What the flap guard says about one red alarm on a VM. */
export type FlapVerdict =
  /** Not flapping: act as usual. */
  | { held: false }
  /** Handed over to people: no action; `first` when this event started the hand-over (it sends the notice). */
  | { held: true; first: boolean; since: number; reds: number };

export class RemediationState {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    /** The vCenter whose VMs this view keys (`default`: the moref alone). */
    readonly vcenter = "default",
    private readonly root?: RemediationState,
  ) {}

  /** The same state, keying VMs by `<vcenter>/<moref>` for a vCenter other than the default one. */
  forVcenter(vcenter: string): RemediationState {
    const root = this.root ?? this;
    return vcenter === "default" ? root : new RemediationState(this.kv, this.log, vcenter, root);
  }

  /** A VM's key: its moref, prefixed by its vCenter when that is not the default one. */
  private vmKey(moref: string): string {
    return enc(this.vcenter === "default" ? moref : `${this.vcenter}/${moref}`);
  }

  private read<T>(key: string, schema: z.ZodType<T>): Promise<{ value: T; revision: number } | undefined> {
    // Written by another version, or damaged: forgotten rather than acted on as a guess.
    return readKvJson(this.kv, key, schema, this.log, "remediation state entry");
  }

  private async write(key: string, value: unknown): Promise<void> {
    await this.kv.put(key, JSON.stringify(value));
  }

  // ---- events handled -------------------------------------------------------------------

  async isDone(eventId: string): Promise<boolean> {
    return (await this.read(`event.${enc(eventId)}`, DoneSchema)) !== undefined;
  }

  async markDone(eventId: string, now: number): Promise<void> {
    await this.write(`event.${enc(eventId)}`, { at: now });
  }

  // ---- cooldowns ----------------------------------------------------------------------------

  async cooldown(scope: CooldownScope, moref: string): Promise<Cooldown | undefined> {
    return (await this.read(`cooldown.${scope}.${this.vmKey(moref)}`, CooldownSchema))?.value;
  }

  async setCooldown(scope: CooldownScope, moref: string, c: Cooldown): Promise<void> {
    await this.write(`cooldown.${scope}.${this.vmKey(moref)}`, c);
  }

  // ---- cap episodes -------------------------------------------------------------------------

  /** Records that the VM is at the cap; false when this episode was already recorded (and noticed). */
  async startCapEpisode(resource: Resource, moref: string, eventId: string, value: number, now: number): Promise<boolean> {
    const key = `cap.${resource}.${this.vmKey(moref)}`;
    try {
      await this.kv.create(key, JSON.stringify({ since: now, eventId, value }));
      return true;
    } catch (err) {
      const existing = await this.read(key, CapSchema);
      if (!existing) throw err;
      // The same event again (a redelivery): it is the one that started the episode.
      return existing.value.eventId === eventId;
    }
  }

  /** The VM is below the cap again: the next time it reaches it is a new episode. */
  async endCapEpisode(resource: Resource, moref: string): Promise<void> {
    const key = `cap.${resource}.${this.vmKey(moref)}`;
    if (await this.read(key, CapSchema)) await this.kv.delete(key);
  }

  // ---- deferred changes ---------------------------------------------------------------------

  async pending(resource: Resource, moref: string): Promise<Pending | undefined> {
    return (await this.read(`pending.${resource}.${this.vmKey(moref)}`, PendingSchema))?.value;
  }

  async putPending(p: Pending): Promise<void> {
    await this.write(`pending.${p.resource}.${this.vmKey(p.moref)}`, this.vcenter === "default" ? p : { ...p, vcenter: this.vcenter });
  }

  async deletePending(p: Pending): Promise<void> {
    await this.kv.delete(`pending.${p.resource}.${this.vmKey(p.moref)}`);
  }

  /** Every deferred change of every vCenter, grouped by VM (`<moref>`, or `<vcenter>/<moref>`; a Pending names its vCenter). */
  async allPending(): Promise<Map<string, Pending[]>> {
    const out = new Map<string, Pending[]>();
    for (const k of await kvKeys(this.kv, "pending.>")) {
      const p = (await this.read(k, PendingSchema))?.value;
      const vm = p ? `${p.vcenter ? `${p.vcenter}/` : ""}${p.moref}` : "";
      if (p) out.set(vm, [...(out.get(vm) ?? []), p]);
    }
    return out;
  }

  /** Deferred changes of one VM. */
  async pendingOf(moref: string): Promise<Pending[]> {
    // Both keys at once: a storm of power-offs reads them for every VM.
    const found = await Promise.all((["cpu", "memory"] as const).map((r) => this.pending(r, moref)));
    return found.filter((p): p is Pending => p !== undefined);
  }

  // ---- the flap guard ----------------------------------------------------------------------

  /**
   * Records a red alarm on a VM and says whether the VM is handed over to people: `count` reds of
   * one alarm within `withinMs` start a hand-over, which lasts until `withinMs` pass with no red at
   * all on the VM. A compare-and-set on the VM's key, so replicas agree; the same event again (a
   * redelivery) gets the verdict it had the first time.
   */
  async noteRed(moref: string, eventId: string, alarm: string, now: number, count: number, withinMs: number): Promise<FlapVerdict> {
    const key = `flap.${this.vmKey(moref)}`;
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.read(key, FlapSchema);
      const seen = cur?.value.reds.find((r) => r.eventId === eventId);
      if (seen && cur) {
        const h = cur.value.handover;
        if (!seen.held || !h) return { held: false };
        return { held: true, first: h.eventId === eventId, since: h.at, reds: cur.value.reds.length };
      }
      let handover = cur?.value.handover;
      const last = Math.max(0, ...(cur?.value.reds ?? []).map((r) => r.at));
      // The window passed with no red: the hand-over is over.
      if (handover && last <= now - withinMs) handover = undefined;
      const reds = (cur?.value.reds ?? []).filter((r) => r.at > now - withinMs).slice(-(count * 4));
      const sameAlarm = reds.filter((r) => r.alarm === alarm).length + 1;
      let verdict: FlapVerdict;
      if (handover) verdict = { held: true, first: false, since: handover.at, reds: reds.length + 1 };
      else if (sameAlarm >= count) {
        handover = { at: now, eventId };
        verdict = { held: true, first: true, since: now, reds: sameAlarm };
      } else verdict = { held: false };
      const next = JSON.stringify({ reds: [...reds, { at: now, eventId, alarm, held: verdict.held }], ...(handover ? { handover } : {}) });
      try {
        if (cur) await this.kv.update(key, next, cur.revision);
        else await this.kv.create(key, next);
        return verdict;
      } catch {
        // Another instance recorded a red meanwhile: read again.
      }
    }
    throw new IaasError("IAAS_UNAVAILABLE", "the remediation flap guard is contended; the event is tried again");
  }

  /** Whether the VM is handed over to people now (no red for `withinMs` ends it). */
  async isHandedOver(moref: string, now: number, withinMs: number): Promise<boolean> {
    const cur = (await this.read(`flap.${this.vmKey(moref)}`, FlapSchema))?.value;
    if (!cur?.handover) return false;
    return Math.max(0, ...cur.reds.map((r) => r.at)) > now - withinMs;
  }

  // ---- brake refusals ------------------------------------------------------------------------

  /**
   * Counts one red alarm the brake refused in the minute of `now`, in memory: `writeBrakeSkips`
   * adds what was counted to `brakeskips.<minute>` (once a second, before a summary and on stop),
   * so a storm costs one compare-and-set a second rather than one per refusal. What an instance
   * counted but had not written when it died is lost (at most about a second's refusals).
   */
  noteBrakeSkip(now: number, eventId: string, summary?: z.infer<typeof BrakeSummarySchema>): number {
    const minute = Math.floor(now / WINDOW_MS);
    const u = this.unwrittenSkips.get(minute);
    if (u) u.count++;
    else this.unwrittenSkips.set(minute, { count: 1, first: eventId, ...(summary ? { summary } : {}) });
    return minute;
  }

  /** Refusals counted by `noteBrakeSkip` and not written yet, by minute: how many, and the first one's facts. */
  private readonly unwritten = new Map<number, UnwrittenSkips>();
  private get unwrittenSkips(): Map<number, UnwrittenSkips> {
    return this.root?.unwrittenSkips ?? this.unwritten;
  }

  /** Whether refusals are counted in memory and not written yet. */
  get hasUnwrittenSkips(): boolean {
    return this.unwrittenSkips.size > 0;
  }

  /**
   * Adds the refusals counted in memory to their minutes' `brakeskips.<minute>` (a compare-and-set
   * each, so replicas add up). The instance that creates a minute's key (its first refusal) owes that
   * minute's one summary notice, and so does the one whose first refusal of the minute is the key's
   * (a redelivery of that event: not counted twice). Another refusal redelivered may be counted twice.
   * What cannot be written (contended, NATS away) stays counted in memory for the next time.
   */
  async writeBrakeSkips(): Promise<void> {
    const all = this.unwrittenSkips;
    for (const [minute, u] of [...all]) {
      all.delete(minute);
      let written = false;
      try {
        written = await this.addBrakeSkips(minute, u);
      } finally {
        if (!written) {
          // Counted again meanwhile: both are kept, the earlier one's facts first.
          const again = all.get(minute);
          all.set(minute, again ? { ...u, count: u.count + again.count } : u);
        }
      }
    }
  }

  private async addBrakeSkips(minute: number, u: UnwrittenSkips): Promise<boolean> {
    const key = `brakeskips.${minute}`;
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = await this.read(key, BrakeSkipsSchema);
      try {
        if (!cur) {
          await this.kv.create(key, JSON.stringify({ skipped: u.count, by: u.first, ...(u.summary ? { summary: u.summary } : {}) }));
          this.owedSummaries.add(minute);
          return true;
        }
        // A redelivered first refusal is not counted twice.
        const first = cur.value.by === u.first;
        if (first) this.owedSummaries.add(minute);
        const add = first ? u.count - 1 : u.count;
        if (add > 0) await this.kv.update(key, JSON.stringify({ ...cur.value, skipped: cur.value.skipped + add }), cur.revision);
        return true;
      } catch {
        // Another instance counted some meanwhile: read again.
      }
    }
    return false;
  }

  /**
   * Minutes whose summary this instance owes (it counted their first refusal), posted once the
   * minute is over; `unsummarizedBrakeMinutes` finds those another instance left behind.
   */
  private readonly owed = new Set<number>();
  /** Shared by every vCenter's view. */
  get owedSummaries(): Set<number> {
    return this.root?.owedSummaries ?? this.owed;
  }

  /** How many red alarms the brake refused in the minute (epoch ms / 60 000), and the summary's facts. */
  async brakeMinute(minute: number): Promise<BrakeMinute | undefined> {
    const cur = await this.read(`brakeskips.${minute}`, BrakeSkipsSchema);
    return cur && { minute, skipped: cur.value.skipped, summary: cur.value.summary, summarized: cur.value.summarized === true };
  }

  /** How many red alarms the brake refused in the minute (epoch ms / 60 000). */
  async brakeSkips(minute: number): Promise<number> {
    return (await this.brakeMinute(minute))?.skipped ?? 0;
  }

  /** Minutes with refusals whose summary was not posted (an instance stopped before the minute was over). */
  async unsummarizedBrakeMinutes(): Promise<number[]> {
    const out: number[] = [];
    for (const k of await kvKeys(this.kv, "brakeskips.>")) {
      const minute = Number(k.slice("brakeskips.".length));
      const m = Number.isSafeInteger(minute) ? await this.brakeMinute(minute) : undefined;
      if (m && !m.summarized) out.push(minute);
    }
    return out.sort((a, b) => a - b);
  }

  /** Notes that the minute's summary is out (after posting it: a crash in between posts it again, deduplicated by its id). */
  async markBrakeSummarized(minute: number): Promise<void> {
    const key = `brakeskips.${minute}`;
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = await this.read(key, BrakeSkipsSchema);
      if (!cur || cur.value.summarized) return;
      try {
        await this.kv.update(key, JSON.stringify({ ...cur.value, summarized: true }), cur.revision);
        return;
      } catch {
        // A refusal counted meanwhile: read again.
      }
    }
  }

  // ---- the brake -------------------------------------------------------------------------

  /** Until when (epoch ms) the brake's budget is known to be used up: learnt from a refusal of `takeBrake`. */
  private readonly spentHint = { until: 0 };
  private get spent(): { until: number } {
    return this.root?.spent ?? this.spentHint;
  }

  /**
   * Whether the brake's budget is known to be used up at `now` (the last refusal of `takeBrake` said
   * until when), so an alarm can be refused before its VM is read. Only a hint: a change is still
   * made only after `takeBrake` succeeds, and once the hint runs out the shared key is read again.
   */
  brakeSpent(now: number): boolean {
    return now < this.spent.until;
  }

  /**
   * Takes one action from the budget of `limit` per minute, shared by every instance (a
   * compare-and-set on one key). False when the last minute already had `limit` actions.
   */
  takeBrake(now: number, limit: number): Promise<boolean> {
    // One at a time within this instance (events of different VMs run side by side): they never contend with each other.
    const root = this.root ?? this;
    const run = root.brakeTurn.then(() => this.takeBrakeNow(now, limit));
    root.brakeTurn = run.catch(() => undefined);
    return run;
  }

  private brakeTurn: Promise<unknown> = Promise.resolve();

  /**
   * A change the brake allowed at `takenAt` is made (recorded) at `doneAt`: it counts from then, so
   * a slow change does not let the next minute's budget start before it is over (the minute of
   * changes is the minute of made changes, as the audit shows them). Best effort: a failure is
   * logged, and the change keeps counting from when it was allowed.
   */
  brakeDone(takenAt: number, doneAt: number): Promise<void> {
    const root = this.root ?? this;
    const run = root.brakeTurn.then(() => this.brakeDoneNow(takenAt, doneAt)).catch((err: unknown) => this.log.warn({ err }, "could not move the brake's record of a change to when it was made"));
    root.brakeTurn = run;
    return run;
  }

  private async brakeDoneNow(takenAt: number, doneAt: number): Promise<void> {
    if (doneAt <= takenAt) return;
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.read("brake", BrakeSchema);
      const i = cur?.value.times.indexOf(takenAt) ?? -1;
      if (!cur || i < 0) return;
      const times = [...cur.value.times];
      times[i] = doneAt;
      try {
        await this.kv.update("brake", JSON.stringify({ times }), cur.revision);
        return;
      } catch {
        // Another instance took one meanwhile: read again.
      }
    }
  }

  private async takeBrakeNow(now: number, limit: number): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.read("brake", BrakeSchema);
      const recent = (cur?.value.times ?? []).filter((t) => t > now - WINDOW_MS && t <= now + WINDOW_MS);
      if (recent.length >= limit) {
        // The budget comes back when enough of these actions are a minute old; other instances can only take more.
        const sorted = [...recent].sort((a, b) => a - b);
        this.spent.until = limit > 0 ? sorted[recent.length - limit]! + WINDOW_MS : now + WINDOW_MS;
        return false;
      }
      const next = JSON.stringify({ times: [...recent, now] });
      try {
        if (cur) await this.kv.update("brake", next, cur.revision);
        else await this.kv.create("brake", next);
        return true;
      } catch {
        // Another instance took one meanwhile: read again.
      }
    }
    throw new IaasError("IAAS_UNAVAILABLE", "the remediation action brake is contended; the event is tried again");
  }
}
