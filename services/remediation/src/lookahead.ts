import { Streams, VsphereEventSchema, eventSubject, normalizeVsphereEvent, type NormalizedVsphereEvent, type ObjRef, type VsphereEvent } from "@iaas/contracts";
import type { Jet } from "@iaas/runtime";
import type { MsgRequest, StoredMsg } from "@nats-io/jetstream";

/** An alarm on an object, as events name them: by moref when both sides carry one, else by name. */
function sameRef(a: ObjRef | undefined, b: ObjRef | undefined): boolean {
  if (!a || !b) return false;
  if (a.value && b.value) return a.value === b.value;
  return a.name !== undefined && a.name.toLowerCase() === b.name?.toLowerCase();
}

export interface LaterStatus {
  /** The newest status of the alarm on the entity, e.g. `green`. */
  to: string;
  key: number;
}

/** One alarm event read ahead: where it is in the stream, its key and the status it turned to. */
interface Entry {
  seq: number;
  key: number;
  to: string;
  group: Group;
  /** Dropped from its group (a later event of the group has a higher key, or it was evicted). */
  dead: boolean;
}

/**
 * The alarm events of one vCenter, alarm and object, read ahead. The refs are the first event's;
 * every event of the group has the same moref and lower-cased name, so `sameRef` says the same of
 * each. Entries by stream sequence, their keys never rising: the first entry past a sequence has
 * the newest key past it (of equal keys the earliest, as a read from that sequence finds first).
 */
interface Group {
  id: string;
  source: string;
  alarm: ObjRef;
  entity: ObjRef;
  entries: Entry[];
}

export interface LookaheadStats {
  /** Alarm events held (the cap bounds this). */
  entries: number;
  /** Entries queued for eviction, including those already dropped from their groups (at most twice the cap, plus a little). */
  queued: number;
  groups: number;
  /** The held events are every one that matters between `start` and `end` (stream sequences). */
  start: number;
  end: number;
  /** Messages read ahead by the shared scan, and one by one for sequences before `start`. */
  scanned: number;
  fallbackReads: number;
}

export interface Lookahead {
  /**
   * Whether the stream already holds a newer status of the same alarm on the same entity (from the
   * same vCenter) than `ev`, stored after it (sequence `afterSeq`): remediation runs behind when it
   * was down or busy, and an alarm that has gone back to green since must not be acted on. Returns
   * the newest such status (the highest key; of equal keys, the first stored).
   */
  newerAlarmStatus(afterSeq: number, ev: VsphereEvent, n: NormalizedVsphereEvent, upTo?: number): Promise<LaterStatus | undefined>;
  stats(): LookaheadStats;
}

export interface LookaheadOptions {
  /** How many alarm events the shared scan holds at most; beyond it the oldest are dropped. */
  maxEntries: number;
}

/**
 * The lookahead: one forward scan of the stream's alarm events shared by every lookup, instead of
 * each alarm reading every alarm stored after it (quadratic when a storm is queued).
 *
 * The scan reads the alarm events' subject with STREAM.MSG.GET `next_by_subj` (nats-server 2.9+)
 * from where it last stopped to the stream's end, and keeps, per vCenter, alarm and object, the
 * events that can still be the newest status past some sequence (an event with a higher key
 * stored later hides the earlier ones). A lookup extends the scan to the stream's end (lookups at
 * the same time share one scan; one that starts while a scan is running waits for it and then for
 * one more read, so it sees everything stored before it started) and answers from memory; given
 * `upTo` (the stream's last sequence when its event was delivered) it waits only until the scan has
 * read that far, not for the end a storm keeps moving. While behind, the scan reads up to 32
 * sequences a round trip.
 *
 * Memory: at most `maxEntries` events; past that the oldest are dropped. Events the consumer has
 * passed are dropped too (a lookup at sequence s drops those up to s). A lookup before the held
 * range (a redelivery, or past the cap) reads the sequences before it one by one, as the scan does.
 */
export function createLookahead(jet: Jet, opts: LookaheadOptions): Lookahead {
  const scans = new Map<string, Scan>();
  return {
    newerAlarmStatus(afterSeq, ev, n, upTo) {
      const subject = eventSubject(ev.eventClass);
      let s = scans.get(subject);
      if (!s) scans.set(subject, (s = new Scan(jet, subject, opts.maxEntries)));
      return s.lookup(afterSeq, ev, n, upTo);
    },
    stats() {
      const all = [...scans.values()].map((s) => s.stats());
      if (all.length === 1) return all[0]!;
      const sum = (k: keyof LookaheadStats) => all.reduce((a, s) => a + s[k], 0);
      return { entries: sum("entries"), queued: sum("queued"), groups: sum("groups"), start: 0, end: 0, scanned: sum("scanned"), fallbackReads: sum("fallbackReads") };
    },
  };
}

/** The parts of a stored alarm event the lookahead compares; undefined when it can never match. */
function readAlarm(m: StoredMsg): { source: string; key: number; to: string; alarm: ObjRef; entity: ObjRef } | undefined {
  let other: VsphereEvent;
  try {
    const parsed = VsphereEventSchema.safeParse(m.json());
    if (!parsed.success) return undefined;
    other = parsed.data;
  } catch {
    return undefined;
  }
  const o = normalizeVsphereEvent(other);
  if (!o.to || !o.alarm || !o.entity) return undefined;
  return { source: other.source, key: o.key, to: o.to, alarm: o.alarm, entity: o.entity };
}

const lower = (r: ObjRef) => r.name?.toLowerCase();

/** The most reads the scan makes at once. */
const MAX_WIDTH = 32;

class Scan {
  /** Held: every alarm event of the subject with a sequence in [start, end] that can still be an answer. */
  private start = 0;
  private end = 0;
  private started = false;
  private readonly groups = new Map<string, Group>();
  /** Groups by their object's moref, and by its lower-cased name: where a lookup's candidates are. */
  private readonly byValue = new Map<string, Set<Group>>();
  private readonly byName = new Map<string, Set<Group>>();
  /** Every entry in stream order (dead ones too, until evicted or compacted), from `head`. */
  private queue: Entry[] = [];
  private head = 0;
  private live = 0;
  private scanned = 0;
  private fallbackReads = 0;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** The highest stream sequence the scan has read past (an alarm event's, or the end found). */
  private pos = 0;
  /** Reads of the scan issued so far; a read that finds nothing answers the lookups that waited before it. */
  private reads = 0;
  /** How many reads the scan makes at once (scanToEnd). */
  private width = 1;
  /** Lookups waiting for the scan to pass a sequence (`reach`). */
  private waiters: { upTo: number; since: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(
    private readonly jet: Jet,
    private readonly subject: string,
    private readonly maxEntries: number,
  ) {}

  stats(): LookaheadStats {
    return { entries: this.live, queued: this.queue.length - this.head, groups: this.groups.size, start: this.start, end: this.end, scanned: this.scanned, fallbackReads: this.fallbackReads };
  }

  async lookup(afterSeq: number, ev: VsphereEvent, n: NormalizedVsphereEvent, upTo?: number): Promise<LaterStatus | undefined> {
    if (!this.started) {
      this.started = true;
      this.start = afterSeq + 1;
      this.end = afterSeq;
      this.pos = afterSeq;
    }
    await (upTo === undefined ? this.extend() : this.reach(upTo));
    // From memory, synchronously: what is held now covers [start, end].
    const held = this.start;
    let newest = this.fromMemory(afterSeq, ev, n);
    if (afterSeq + 1 > this.start) this.dropThrough(afterSeq);
    if (afterSeq + 1 < held) {
      // Before what is held (a redelivery, or dropped past the cap): read those one by one.
      const before = await this.readBetween(afterSeq + 1, held, ev, n);
      if (before && (!newest || before.key >= newest.key)) newest = before;
    }
    return newest;
  }

  /** Reads to the stream's end, shared: a caller that finds a scan running waits for it and one more. */
  private extend(): Promise<void> {
    if (!this.running) {
      this.running = this.scanToEnd().finally(() => (this.running = undefined));
      return this.running;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.extend();
      });
    return this.next;
  }

  /**
   * Waits until the scan has read past `upTo` (the stream's last sequence when the event was
   * delivered), not to the moving end: while a storm is being stored, the scan chases the end and
   * would hold every lookup until the storm is over.
   */
  private reach(upTo: number): Promise<void> {
    if (this.pos >= upTo) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, since: this.reads, resolve, reject });
      this.extend().catch((err: unknown) => {
        const failed = this.waiters;
        this.waiters = [];
        for (const w of failed) w.reject(err);
      });
    });
  }

  /** Lets go the lookups the scan has read far enough for; `endBefore`: a read found the end, and it was issued as read number `endBefore`. */
  private release(endBefore?: number): void {
    if (this.waiters.length === 0) return;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.upTo <= this.pos || (endBefore !== undefined && w.since < endBefore)) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  private get(seq: number): Promise<StoredMsg | null> {
    // nats.js types next_by_subj only for direct get; the server takes it on STREAM.MSG.GET too,
    // and nats.js passes the query through unchanged.
    const query = { seq, next_by_subj: this.subject } as unknown as MsgRequest;
    return this.jet.jsm.streams.getMessage(Streams.events.name, query);
  }

  private async scanToEnd(): Promise<void> {
    for (;;) {
      const read = ++this.reads;
      // `width` reads at once, from the next `width` sequences: each finds the first alarm event at or after its
      // sequence, so together they find every one up to the highest found (none missed, some found twice). A storm
      // is read `width` sequences a round trip; the width doubles while no read finds the end, and is 1 again once one does.
      const from = this.end + 1;
      const found = await Promise.all(Array.from({ length: this.width }, (_, i) => this.get(from + i)));
      const atEnd = found.some((m) => !m);
      this.width = atEnd ? 1 : Math.min(MAX_WIDTH, this.width * 2);
      const seen = new Set<number>();
      for (const m of found) {
        if (!m || seen.has(m.seq) || m.seq <= this.end) continue;
        seen.add(m.seq);
        this.scanned++;
        this.pos = Math.max(this.pos, m.seq);
        // A lookup may have dropped through a later sequence meanwhile: that part is not held.
        if (m.seq < this.start) continue;
        this.end = m.seq;
        const a = readAlarm(m);
        if (a) this.add(m.seq, a);
      }
      if (atEnd) {
        // The end: every lookup waiting since before this read has all it asked for; the others read once more.
        this.release(read);
        if (this.waiters.length === 0) return;
        continue;
      }
      this.release();
    }
  }

  private add(seq: number, a: NonNullable<ReturnType<typeof readAlarm>>): void {
    const id = JSON.stringify([a.source, a.alarm.value || null, lower(a.alarm) ?? null, a.entity.value || null, lower(a.entity) ?? null]);
    let g = this.groups.get(id);
    if (!g) {
      g = { id, source: a.source, alarm: a.alarm, entity: a.entity, entries: [] };
      this.groups.set(id, g);
      if (a.entity.value) index(this.byValue, a.entity.value, g);
      const name = lower(a.entity);
      if (name !== undefined) index(this.byName, name, g);
    }
    // Earlier events of the group with a lower key are never the newest past any sequence again.
    while (g.entries.length > 0 && g.entries[g.entries.length - 1]!.key < a.key) {
      g.entries.pop()!.dead = true;
      this.live--;
    }
    const e: Entry = { seq, key: a.key, to: a.to, group: g, dead: false };
    g.entries.push(e);
    this.queue.push(e);
    this.live++;
    while (this.live > this.maxEntries) this.evictOldest();
    // Dead entries wait in the queue until they reach its head: compact when they outnumber the live ones.
    if (this.queue.length - this.head > 2 * this.maxEntries + 1024) this.compact();
  }

  /** Drops the oldest held entry; what is held starts after it. */
  private evictOldest(): void {
    while (this.head < this.queue.length) {
      const e = this.queue[this.head++]!;
      if (e.dead) continue;
      this.remove(e);
      this.start = e.seq + 1;
      break;
    }
    this.trim();
  }

  /** The consumer is past `seq`: entries up to it are not needed (a lookup before them reads the stream). */
  private dropThrough(seq: number): void {
    while (this.head < this.queue.length && this.queue[this.head]!.seq <= seq) {
      const e = this.queue[this.head++]!;
      if (!e.dead) this.remove(e);
    }
    this.start = seq + 1;
    this.end = Math.max(this.end, seq);
    this.trim();
  }

  /** Removes the entry from its group: it is the group's oldest (entries leave in stream order). */
  private remove(e: Entry): void {
    const g = e.group;
    e.dead = true;
    this.live--;
    const at = g.entries.indexOf(e);
    if (at >= 0) g.entries.splice(at, 1);
    if (g.entries.length > 0) return;
    this.groups.delete(g.id);
    if (g.entity.value) unindex(this.byValue, g.entity.value, g);
    const name = lower(g.entity);
    if (name !== undefined) unindex(this.byName, name, g);
  }

  private trim(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private compact(): void {
    this.queue = this.queue.slice(this.head).filter((e) => !e.dead);
    this.head = 0;
  }

  private fromMemory(afterSeq: number, ev: VsphereEvent, n: NormalizedVsphereEvent): LaterStatus | undefined {
    const q = n.entity;
    if (!q || !n.alarm) return undefined;
    const candidates = new Set<Group>();
    if (q.value) for (const g of this.byValue.get(q.value) ?? []) candidates.add(g);
    const name = lower(q);
    if (name !== undefined) for (const g of this.byName.get(name) ?? []) candidates.add(g);
    let newest: { to: string; key: number; seq: number } | undefined;
    for (const g of candidates) {
      if (g.source !== ev.source || !sameRef(g.alarm, n.alarm) || !sameRef(g.entity, q)) continue;
      const e = g.entries.find((x) => x.seq > afterSeq);
      if (!e || e.key <= ev.key) continue;
      if (!newest || e.key > newest.key || (e.key === newest.key && e.seq < newest.seq)) newest = { to: e.to, key: e.key, seq: e.seq };
    }
    return newest && { to: newest.to, key: newest.key };
  }

  /** The newest status among the alarm events in [from, before), read one by one. */
  private async readBetween(from: number, before: number, ev: VsphereEvent, n: NormalizedVsphereEvent): Promise<LaterStatus | undefined> {
    let newest: LaterStatus | undefined;
    let seq = from;
    while (seq < before) {
      const m = await this.get(seq);
      if (!m || m.seq >= before) break;
      this.fallbackReads++;
      seq = m.seq + 1;
      const o = readAlarm(m);
      if (!o || o.source !== ev.source || o.key <= ev.key) continue;
      if (!sameRef(o.alarm, n.alarm) || !sameRef(o.entity, n.entity)) continue;
      if (!newest || o.key > newest.key) newest = { to: o.to, key: o.key };
    }
    return newest;
  }
}

function index(map: Map<string, Set<Group>>, k: string, g: Group): void {
  let s = map.get(k);
  if (!s) map.set(k, (s = new Set()));
  s.add(g);
}

function unindex(map: Map<string, Set<Group>>, k: string, g: Group): void {
  const s = map.get(k);
  s?.delete(g);
  if (s?.size === 0) map.delete(k);
}
