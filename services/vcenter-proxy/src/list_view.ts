import { globFold, type Glob } from "@iaas/policy";
import type { IndexedVm, VmChange } from "@iaas/vsphere";

const collator = new Intl.Collator();

/**
 * The collator's primary weight of each printable ASCII character, by rank (`A` and `a` one
 * rank), read from the collator itself; undefined where its order cannot be had that way. In the
 * collator's default (CLDR root, as English uses it) each such character is one primary weight, not
 * ignorable, and none contracts with another: two such names compare by these ranks until the
 * first that differ, the shorter first if one is the other's start, and only names equal but for
 * case need the collator. A comparison costs tens of nanoseconds instead of the collator's 0.2 to
 * 1.5 µs (V8's own fast path leaves out `_` and capitals, which VM names are full of).
 */
const RANKS: Uint8Array | undefined = (() => {
  const lang = collator.resolvedOptions().locale.split("-")[0];
  if (lang !== "en" && lang !== "und") return undefined;
  const base = new Intl.Collator(collator.resolvedOptions().locale, { sensitivity: "base" });
  const chars = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).sort(base.compare);
  const ranks = new Uint8Array(0x80);
  let rank = 1;
  chars.forEach((ch, i) => {
    if (i > 0 && base.compare(chars[i - 1]!, ch) !== 0) rank++;
    ranks[ch.charCodeAt(0)] = rank;
  });
  // One rank is one character but for case (a pattern's prefix is then a range of the ranks).
  for (const a of chars) for (const b of chars) if ((ranks[a.charCodeAt(0)] === ranks[b.charCodeAt(0)]) !== (a.toLowerCase() === b.toLowerCase())) return undefined;
  // Checked on a fixed sample: pairs of short names, against the collator.
  let seed = 1;
  const pick = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), chars[seed % chars.length]!);
  const name = () => Array.from({ length: 1 + (seed % 4) }, pick).join("");
  for (let i = 0; i < 500; i++) {
    const a = name();
    const b = i % 3 === 0 ? a.toUpperCase() + pick() : name();
    if (Math.sign(byRanks(ranks, a, b) || collator.compare(a, b)) !== Math.sign(collator.compare(a, b))) return undefined;
  }
  return ranks;
})();

/**
 * By primary rank: the sign, 0 when the names are the same but for case, NaN when either holds a
 * character other than printable ASCII (the collator decides).
 */
function byRanks(ranks: Uint8Array, a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  let d = 0;
  let i = 0;
  for (; i < n; i++) {
    // Past 0x7f the array answers undefined; below 0x20 and at 0x7f, 0.
    const ra = ranks[a.charCodeAt(i)];
    const rb = ranks[b.charCodeAt(i)];
    if (!ra || !rb) return Number.NaN;
    if (d === 0 && ra !== rb) d = ra < rb ? -1 : 1;
  }
  for (let j = i; j < a.length; j++) if (!ranks[a.charCodeAt(j)]) return Number.NaN;
  for (let j = i; j < b.length; j++) if (!ranks[b.charCodeAt(j)]) return Number.NaN;
  return d !== 0 ? d : a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Whether the name is compared by ranks: printable ASCII (most VM names). */
const ranked = (name: string): boolean => RANKS !== undefined && PRINTABLE.test(name);

/**
 * A ranked name against a pattern's folded prefix, by ranks over the prefix's length: 0 when the
 * name starts with it (but for case), so the ranked names with a prefix are one range of list order.
 */
function byPrefix(ranks: Uint8Array, name: string, prefix: string): number {
  const n = name.length < prefix.length ? name.length : prefix.length;
  for (let i = 0; i < n; i++) {
    const d = ranks[name.charCodeAt(i)]! - ranks[prefix.charCodeAt(i)]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return name.length < prefix.length ? -1 : 0;
}

/** Names as the collator orders them (its sign), by primary ranks where both are printable ASCII. */
export function compareNames(a: string, b: string): number {
  // NaN and 0 are both falsy: the collator then decides.
  return (RANKS !== undefined && byRanks(RANKS, a, b)) || collator.compare(a, b);
}

/** The order a `list` answers in: by name (the collator), then by moref as a string. */
export function listOrder(aName: string, aId: string, bName: string, bId: string): number {
  return compareNames(aName, bName) || (aId < bId ? -1 : aId > bId ? 1 : 0);
}

/**
 * The first `limit` items by name (then moref) of those offered, and how many were offered: a
 * sorted array of at most `limit`, so memory is the answer's and a large inventory costs one
 * comparison per item past the first `limit` (an item after the last kept one is dropped at once).
 */
export class FirstByName<T> {
  private readonly kept: { name: string; id: string; item: T }[] = [];
  total = 0;

  constructor(readonly limit: number) {}

  offer(name: string, id: string, item: T): void {
    this.total++;
    if (this.limit === 0) return;
    const cmp = (a: { name: string; id: string }) => listOrder(a.name, a.id, name, id);
    const k = this.kept;
    if (k.length === this.limit && cmp(k[k.length - 1]!) <= 0) return;
    let lo = 0;
    let hi = k.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(k[mid]!) <= 0) lo = mid + 1;
      else hi = mid;
    }
    k.splice(lo, 0, { name, id, item });
    if (k.length > this.limit) k.pop();
  }

  /** The kept items, in order, through `fn`, and the count of all offered. */
  map<U>(fn: (item: T) => U): { items: U[]; total: number } {
    return { items: this.kept.map((k) => fn(k.item)), total: this.total };
  }
}

/** What the view follows: the live index's entries and its change notifications. */
export interface ViewSource {
  all(): Iterable<IndexedVm>;
  subscribe(fn: VmChange): () => void;
}

/** The keys of the custom attributes a VM's owner and team are in. */
export interface OwnerKeys {
  owner: number;
  team: number;
}

/** What a `list` keeps: see ProxyEndpoints.vmList. `glob` is case-insensitive, as `list` compiles it. */
export interface ListFilter {
  owner?: string | undefined;
  scope?: { owner: string; teams: readonly string[] } | undefined;
  includeTemplates?: boolean | undefined;
  glob?: Glob | undefined;
}

/** A VM as the filter sees it (from the index, or read from vCenter). */
export interface Listed {
  name: string;
  template: boolean;
  owner: string | undefined;
  team: string | undefined;
}

/** `list`'s filter; `skipGlob` where the candidates are known to match the pattern. */
export function listWanted(q: ListFilter, skipGlob = false): (o: Listed) => boolean {
  const glob = skipGlob ? undefined : q.glob;
  return (o) =>
    (q.includeTemplates || !o.template) &&
    (!q.owner || o.owner === q.owner) &&
    (!q.scope || (o.owner !== undefined && o.owner === q.scope.owner) || (o.team !== undefined && q.scope.teams.includes(o.team))) &&
    (!glob || glob.test(o.name));
}

/** Whether a glob is its literal prefix and a `*`: every name with the prefix matches it. */
const prefixOnly = (glob: Glob) => {
  const rest = [...glob.source].slice([...glob.prefix].length);
  return rest.length > 0 && rest.every((ch) => ch === "*");
};

/** Whether `name`, folded (globFold), starts with `prefix`: by code unit for ASCII, without a copy. */
function foldStartsWith(name: string, prefix: string): boolean {
  if (name.length < prefix.length) return globFold(name).startsWith(prefix);
  for (let i = 0; i < prefix.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x80) return globFold(name).startsWith(prefix);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

const byList = (a: IndexedVm, b: IndexedVm) => listOrder(a.name, a.ref.value, b.name, b.ref.value);
/** By name folded as a case-insensitive glob folds it, in code units, then moref: a glob's prefix is one range of it. */
const byFold = (a: IndexedVm, b: IndexedVm) => {
  const fa = globFold(a.name);
  const fb = globFold(b.name);
  return fa < fb ? -1 : fa > fb ? 1 : a.ref.value < b.ref.value ? -1 : a.ref.value > b.ref.value ? 1 : 0;
};

/**
 * The live index as `list` reads it, kept up to date by its change notifications so a page costs
 * what it holds, not the inventory: every entry in list order (a page of all is a slice); the
 * ranked ones (printable ASCII names, `compareNames`) again in list order, where the names with a
 * pattern's literal prefix are one range (found by binary search: a prefix-and-star pattern's page
 * is a slice of it and its count the range's length); the others by folded name, where they are
 * one range too; the VMs of each owner and of each team (a scope visits only its own); and the
 * templates (so a total needs no walk). It holds the index's entries, not copies: two references
 * per VM, plus one per owned VM, one per VM with a team and one per template.
 *
 * Each sorted array is kept by binary search and insertion (a memmove of the array: microseconds at
 * 50,000 VMs); a change that keeps the name (power, size, custom values, disks) replaces the entry
 * in place. Built once by sorting what the index holds, so the first full answer never arrives one
 * insertion at a time (a rebuild after a renewed session names VMs the view holds: each is replaced
 * in place).
 */
export class ListView {
  private readonly ordered: IndexedVm[];
  /** The ranked entries, in list order. */
  private readonly ranked: IndexedVm[];
  /** The others, by folded name. */
  private readonly folded: IndexedVm[];
  private readonly byOwner = new Map<string, Set<IndexedVm>>();
  private readonly byTeam = new Map<string, Set<IndexedVm>>();
  private readonly templates = new Set<IndexedVm>();
  private readonly unsubscribe: () => void;
  /** Entries not where their order put them (found by a walk instead): 0 unless the order is broken. */
  misplaced = 0;
  /** Entries `page` has looked at, for tests: what a query costs. */
  visited = 0;

  constructor(
    source: ViewSource,
    private readonly keys: OwnerKeys,
  ) {
    const all = [...source.all()];
    for (const v of all) this.addTo(v);
    this.ordered = all.sort(byList);
    this.ranked = this.ordered.filter((v) => ranked(v.name));
    this.folded = this.ordered.filter((v) => !ranked(v.name)).sort(byFold);
    // Subscribed in the turn that read the entries: no change falls between them.
    this.unsubscribe = source.subscribe((prev, next) => this.change(prev, next));
  }

  get size(): number {
    return this.ordered.length;
  }

  /** The VMs and templates whose owner (custom attribute) is `owner`. */
  ownedBy(owner: string): ReadonlySet<IndexedVm> {
    return this.byOwner.get(owner) ?? NONE;
  }

  /** The VMs and templates whose team (custom attribute) is `team`. */
  inTeam(team: string): ReadonlySet<IndexedVm> {
    return this.byTeam.get(team) ?? NONE;
  }

  /** The templates. */
  templateEntries(): ReadonlySet<IndexedVm> {
    return this.templates;
  }

  close(): void {
    this.unsubscribe();
  }

  /**
   * The first `limit` entries `q` keeps (listWanted), in list order, and how many it keeps,
   * visiting only the candidates `q` narrows to: an owner's or a scope's VMs; else the names with
   * the pattern's literal prefix (not tested against the pattern when it is that prefix and a
   * `*`); else every entry in order (a page of all, counted without a walk).
   */
  page(q: ListFilter, limit: number): { items: IndexedVm[]; total: number } {
    const keep = (skipGlob: boolean) => {
      const w = listWanted(q, skipGlob);
      return (v: IndexedVm) => {
        this.visited++;
        return w({ name: v.name, template: v.template, owner: this.ownerOf(v), team: this.teamOf(v) });
      };
    };
    if (q.owner !== undefined || q.scope !== undefined) return this.first(this.scoped(q), keep(false), limit);
    const prefix = q.glob?.prefix ?? "";
    if (prefix !== "") {
      const only = prefixOnly(q.glob!);
      const wanted = keep(only);
      const [lo, hi] = this.rankedRange(prefix);
      if (!only) return this.first(this.withPrefix(prefix, lo, hi), wanted, limit);
      // Every ranked name of the range matches: its first wanted are in list order already, and
      // its count is the range's less its templates. The others are tested and merged in.
      const sel = new FirstByName<IndexedVm>(limit);
      let kept = 0;
      for (let i = lo; i < hi && kept < limit; i++) {
        const v = this.ranked[i]!;
        if (wanted(v)) {
          sel.offer(v.name, v.ref.value, v);
          kept++;
        }
      }
      let total = hi - lo;
      if (!q.includeTemplates) for (const t of this.templates) if (ranked(t.name) && foldStartsWith(t.name, prefix)) total--;
      for (const v of this.othersWithPrefix(prefix)) {
        if (!wanted(v)) continue;
        total++;
        sel.offer(v.name, v.ref.value, v);
      }
      return { items: sel.map((v) => v).items, total };
    }
    const wanted = keep(false);
    const items: IndexedVm[] = [];
    if (q.glob === undefined) {
      // In list order already: the page is the first `limit` that are wanted; the total is counted.
      for (const v of this.ordered) {
        if (items.length >= limit) break;
        if (wanted(v)) items.push(v);
      }
      return { items, total: q.includeTemplates ? this.ordered.length : this.ordered.length - this.templates.size };
    }
    let total = 0;
    for (const v of this.ordered) {
      if (!wanted(v)) continue;
      if (total++ < limit) items.push(v);
    }
    return { items, total };
  }

  /** The VMs of `q.owner`, else of `q.scope`'s owner and teams (each once). */
  private *scoped(q: ListFilter): Iterable<IndexedVm> {
    if (q.owner !== undefined) {
      yield* this.byOwner.get(q.owner) ?? [];
      return;
    }
    const scope = q.scope!;
    yield* this.byOwner.get(scope.owner) ?? [];
    for (const team of new Set(scope.teams)) {
      // A VM has one team: the teams' sets are disjoint; one the owner's set gave is left out.
      for (const v of this.byTeam.get(team) ?? []) if (this.ownerOf(v) !== scope.owner) yield v;
    }
  }

  /** Where the ranked names that start with `prefix` (folded) are: [lo, hi) of `ranked`. */
  private rankedRange(prefix: string): [number, number] {
    const r = this.ranked;
    if (RANKS === undefined || !PRINTABLE.test(prefix)) return [0, 0];
    const ranks = RANKS;
    const bound = (past: number) => {
      let lo = 0;
      let hi = r.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (byPrefix(ranks, r[mid]!.name, prefix) < past) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    return [bound(0), bound(1)];
  }

  /** The ranked entries [lo, hi), then the others whose folded name starts with `prefix` (folded). */
  private *withPrefix(prefix: string, lo: number, hi: number): Iterable<IndexedVm> {
    for (let i = lo; i < hi; i++) yield this.ranked[i]!;
    yield* this.othersWithPrefix(prefix);
  }

  /** The others whose folded name starts with `prefix` (folded), in folded order. */
  private *othersWithPrefix(prefix: string): Iterable<IndexedVm> {
    const f = this.folded;
    let lo = 0;
    let hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (globFold(f[mid]!.name) < prefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < f.length && foldStartsWith(f[i]!.name, prefix); i++) yield f[i]!;
  }

  private first(candidates: Iterable<IndexedVm>, wanted: (v: IndexedVm) => boolean, limit: number): { items: IndexedVm[]; total: number } {
    const sel = new FirstByName<IndexedVm>(limit);
    for (const v of candidates) if (wanted(v)) sel.offer(v.name, v.ref.value, v);
    return sel.map((v) => v);
  }

  private ownerOf(v: IndexedVm): string | undefined {
    return v.customValues.get(this.keys.owner) || undefined;
  }

  private teamOf(v: IndexedVm): string | undefined {
    return v.customValues.get(this.keys.team) || undefined;
  }

  private change(prev: IndexedVm | undefined, next: IndexedVm | undefined): void {
    if (prev) this.removeFrom(prev);
    if (next) this.addTo(next);
    const own = (v: IndexedVm): [IndexedVm[], (a: IndexedVm, b: IndexedVm) => number] => (ranked(v.name) ? [this.ranked, byList] : [this.folded, byFold]);
    if (prev && next && prev.name === next.name && prev.ref.value === next.ref.value) {
      // Same place in every order: the entry is swapped in place.
      this.ordered[this.indexOf(this.ordered, prev, byList)] = next;
      const [arr, cmp] = own(prev);
      arr[this.indexOf(arr, prev, cmp)] = next;
      return;
    }
    if (prev) {
      this.ordered.splice(this.indexOf(this.ordered, prev, byList), 1);
      const [arr, cmp] = own(prev);
      arr.splice(this.indexOf(arr, prev, cmp), 1);
    }
    if (next) {
      this.ordered.splice(lowerBound(this.ordered, next, byList), 0, next);
      const [arr, cmp] = own(next);
      arr.splice(lowerBound(arr, next, cmp), 0, next);
    }
  }

  /** Where `v` is in `arr` (by its order; by a walk, counted in `misplaced`, should it not be there). */
  private indexOf(arr: IndexedVm[], v: IndexedVm, cmp: (a: IndexedVm, b: IndexedVm) => number): number {
    const i = lowerBound(arr, v, cmp);
    if (arr[i] === v) return i;
    this.misplaced++;
    const j = arr.indexOf(v);
    if (j < 0) throw new Error(`the list view does not hold ${v.ref.value}`);
    return j;
  }

  private addTo(v: IndexedVm): void {
    if (v.template) this.templates.add(v);
    const owner = this.ownerOf(v);
    const team = this.teamOf(v);
    if (owner !== undefined) setOf(this.byOwner, owner).add(v);
    if (team !== undefined) setOf(this.byTeam, team).add(v);
  }

  private removeFrom(v: IndexedVm): void {
    if (v.template) this.templates.delete(v);
    const owner = this.ownerOf(v);
    const team = this.teamOf(v);
    if (owner !== undefined) dropFrom(this.byOwner, owner, v);
    if (team !== undefined) dropFrom(this.byTeam, team, v);
  }
}

const NONE: ReadonlySet<IndexedVm> = new Set();

function lowerBound(arr: readonly IndexedVm[], v: IndexedVm, cmp: (a: IndexedVm, b: IndexedVm) => number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmp(arr[mid]!, v) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function setOf(m: Map<string, Set<IndexedVm>>, k: string): Set<IndexedVm> {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  return s;
}

function dropFrom(m: Map<string, Set<IndexedVm>>, k: string, v: IndexedVm): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
