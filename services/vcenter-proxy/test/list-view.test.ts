/**
 * ListView, the live index as `list` reads it, against a walk of the whole index (what `list` did
 * before it): after fixed-seed random puts, renames, removals, template flips, power changes and
 * owner and team changes written through a real VmIndex, every query answers the same page and
 * total. And the candidates a query visits are the answer's, not the inventory's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileGlob } from "@iaas/policy";
import { VimClient, VmIndex, type IndexedVm, type MoRef } from "@iaas/vsphere";
import { startVcsim, type Vcsim } from "@iaas/testkit";
import { FirstByName, ListView, compareNames } from "../src/list_view.js";

const KEYS = { owner: 101, team: 102 };

let sim: Vcsim;
let client: VimClient;

beforeAll(async () => {
  sim = await startVcsim();
  client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
});

afterAll(async () => {
  await client?.logout();
  await sim?.stop();
});

interface Query {
  owner?: string;
  scope?: { owner: string; teams: string[] };
  includeTemplates?: boolean;
  glob?: string;
  limit: number;
}

const ownerOf = (v: IndexedVm) => v.customValues.get(KEYS.owner) || undefined;
const teamOf = (v: IndexedVm) => v.customValues.get(KEYS.team) || undefined;

/** `list`'s filter, as it is written there. */
function wantedBy(q: Query): (v: IndexedVm) => boolean {
  const glob = q.glob === undefined ? undefined : compileGlob(q.glob, { caseInsensitive: true });
  return (v) => {
    const owner = ownerOf(v);
    const team = teamOf(v);
    return (
      (q.includeTemplates || !v.template) &&
      (!q.owner || owner === q.owner) &&
      (!q.scope || (owner !== undefined && owner === q.scope.owner) || (team !== undefined && q.scope.teams.includes(team))) &&
      (!glob || glob.test(v.name))
    );
  };
}

/** The walk of every entry `list` made before the view: the reference. */
function walk(index: VmIndex, q: Query): { morefs: string[]; total: number } {
  const wanted = wantedBy(q);
  const sel = new FirstByName<IndexedVm>(q.limit);
  for (const v of index.all()) if (wanted(v)) sel.offer(v.name, v.ref.value, v);
  const { items, total } = sel.map((v) => v);
  return { morefs: items.map((v) => v.ref.value), total };
}

function viaView(view: ListView, q: Query): { morefs: string[]; total: number } {
  const { items, total } = view.page({ ...q, glob: q.glob === undefined ? undefined : compileGlob(q.glob, { caseInsensitive: true }) }, q.limit);
  return { morefs: items.map((v) => v.ref.value), total };
}

/** A fixed-seed generator (an LCG): the same run every time. */
function random(seed: number) {
  let s = seed;
  const next = (n: number) => ((s = (s * 1103515245 + 12345) % 2147483648), Math.floor((s / 2147483648) * n));
  return { int: next, pick: <T>(xs: readonly T[]): T => xs[next(xs.length)]! };
}

describe("ListView", () => {
  it("orders names as the collator does (fixed-seed names of printable ASCII, case variants, and others)", () => {
    const collator = new Intl.Collator();
    const r = random(42);
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i));
    const other = ["\u00e9", "\u00c9", "\u00df", "\u212a", "\u0301", "\u0000", "\t", "\u{1f600}", "\u00e5"];
    const word = () => Array.from({ length: r.int(8) }, () => (r.int(20) === 0 ? r.pick(other) : r.int(2) ? r.pick(ascii) : r.pick(["_", "-", "0", "9", "a", "A", "z", "Z", ".", " "]))).join("");
    let checked = 0;
    for (let i = 0; i < 50_000; i++) {
      const a = word();
      const b = i % 4 === 0 ? a.toUpperCase() : i % 4 === 1 ? a + word() : word();
      expect([a, b, compareNames(a, b)]).toEqual([a, b, collator.compare(a, b)]);
      checked++;
    }
    expect(checked).toBe(50_000);
    // The inventory's own shapes: sorted alike.
    const names = Array.from({ length: 3000 }, (_, i) => `${r.pick(["DC0_C0_RP0_VM", "dc0_h0_vm", "Web-", "web_", "db.", "DB"])}${r.int(200)}`);
    expect([...names].sort(compareNames)).toEqual([...names].sort(collator.compare));
  });

  it("answers what a walk of the index answers, after random changes of every kind (fixed seed)", () => {
    const index = new VmIndex(client);
    const r = random(20261208);
    // Names that share prefixes across case, punctuation that the collator orders apart from
    // code units, namesakes, and characters whose case folding is not ASCII's.
    const stems = ["DC0_C0_RP0_VM", "dc0_c0_rp0_vm", "DC0_C1_", "web-", "Web_", "web", "db.", "ÄPFEL-", "äpfel", "\u212aelvin", "kelvin", "\u017fun", "Stra\u00dfe", "vm", "VM-"];
    const owners = ["U1", "U2", "U3", "U4", ""];
    const teams = ["S1", "S2", "team-a", ""];
    const live: MoRef[] = [];
    let made = 0;
    const name = () => `${r.pick(stems)}${r.int(3) === 0 ? "" : r.int(60)}`;
    const values = (owner: string, team: string) =>
      new Map([
        [KEYS.owner, owner],
        [KEYS.team, team],
      ]);
    const put = (ref: MoRef, vm: Partial<IndexedVm> & { name: string }) =>
      index.note({ ref, template: false, parent: undefined, powerState: "poweredOff", numCPU: 1, memoryMB: 64, diskKB: 0, ...vm });
    for (let i = 0; i < 300; i++) {
      const ref = { type: "VirtualMachine", value: `vm-${++made}` };
      live.push(ref);
      put(ref, { name: name(), template: r.int(10) === 0, customValues: values(r.pick(owners), r.pick(teams)) });
    }
    const view = new ListView(index, KEYS);
    const queries = (): Query[] => {
      const some = index.get(r.pick(live))?.name ?? "vm";
      const cut = [...some].slice(0, 1 + r.int(6)).map((ch) => (r.int(2) ? ch.toUpperCase() : ch.toLowerCase())).join("");
      const limit = r.pick([0, 1, 3, 20, 1000]);
      return [
        { limit },
        { limit, includeTemplates: true },
        { owner: r.pick(owners.slice(0, -1)), limit },
        { scope: { owner: r.pick(owners.slice(0, -1)), teams: [r.pick(teams), r.pick(teams), "S1"] }, limit },
        { owner: "U1", scope: { owner: "U2", teams: ["S1"] }, limit },
        { scope: { owner: "U3", teams: [] }, glob: `${cut}*`, limit },
        { glob: `${cut}*`, limit },
        { glob: `${cut}*`, includeTemplates: true, limit },
        { glob: `${cut}?*`, limit },
        { glob: `${cut}**`, limit },
        { glob: `${cut}*1*`, limit },
        { glob: cut, limit },
        { glob: `*${some.slice(-2)}`, limit },
        { glob: `?${some.slice(1, 3)}*`, limit },
      ];
    };
    let compared = 0;
    for (let step = 0; step < 3000; step++) {
      const ref = r.pick(live);
      const vm = index.get(ref);
      switch (r.int(8)) {
        case 0: {
          const fresh = { type: "VirtualMachine", value: `vm-${++made}` };
          live.push(fresh);
          put(fresh, { name: name(), customValues: values(r.pick(owners), r.pick(teams)) });
          break;
        }
        case 1:
          if (vm) put(ref, { ...vm, name: name(), customValues: undefined });
          break;
        case 2:
          index.forget(ref);
          live.splice(live.indexOf(ref), 1);
          break;
        case 3:
          if (vm) put(ref, { ...vm, template: !vm.template });
          break;
        case 4:
          if (vm) put(ref, { ...vm, powerState: vm.powerState === "poweredOn" ? "poweredOff" : "poweredOn" });
          break;
        case 5:
          index.noteCustomValue(ref, KEYS.owner, r.pick(owners));
          break;
        case 6:
          index.noteCustomValue(ref, KEYS.team, r.pick(teams));
          break;
        default:
          // A VM noted again unchanged but for its size: a new entry in the same place.
          if (vm) put(ref, { ...vm, numCPU: (vm.numCPU ?? 1) + 1 });
      }
      if (step % 25 === 0) {
        expect(view.size).toBe(index.size);
        for (const q of queries()) {
          expect([q, viaView(view, q)]).toEqual([q, walk(index, q)]);
          compared++;
        }
        // An owner's and a team's VMs (what vm-usage counts) and the templates (what template-list
        // reads): the very entries the index holds.
        const all = [...index.all()];
        for (const o of owners) expect([o, new Set(view.ownedBy(o))]).toEqual([o, new Set(all.filter((v) => ownerOf(v) === o))]);
        for (const t of teams) expect([t, new Set(view.inTeam(t))]).toEqual([t, new Set(all.filter((v) => teamOf(v) === t))]);
        expect(new Set(view.templateEntries())).toEqual(new Set(all.filter((v) => v.template)));
      }
    }
    expect(compared).toBeGreaterThan(1000);
    expect(index.size).toBeGreaterThan(300);
    // Every entry was where its order said (no walk was needed to find one).
    expect(view.misplaced).toBe(0);
    view.close();
  });

  it("visits what a query narrows to, not the inventory: 20,000 VMs", () => {
    const index = new VmIndex(client);
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      const mine = i % 1000 === 7;
      index.note({
        ref: { type: "VirtualMachine", value: `vm-${i}` },
        name: `DC0_C${i % 2}_RP0_VM${i}`,
        template: i % 5000 === 1,
        parent: undefined,
        powerState: "poweredOn",
        numCPU: 1,
        memoryMB: 64,
        diskKB: 0,
        customValues: new Map(mine ? [[KEYS.owner, "U1"]] : i % 1000 === 8 ? [[KEYS.team, "S1"]] : []),
      });
    }
    const view = new ListView(index, KEYS);
    const check = (q: Query, most: number) => {
      const before = view.visited;
      expect([q, viaView(view, q)]).toEqual([q, walk(index, q)]);
      expect(view.visited - before, JSON.stringify(q)).toBeLessThanOrEqual(most);
    };
    // A page of all: its own entries and the templates before them; the total counted, not walked.
    check({ limit: 20 }, 20 + 4);
    check({ limit: 20, includeTemplates: true }, 20);
    // An owner's 20 VMs, and with a team's 20.
    check({ owner: "U1", limit: 20 }, 20);
    check({ scope: { owner: "U1", teams: ["S1", "S1"] }, limit: 5 }, 40);
    // A prefix and a star: the page's own entries, the count from the range's bounds.
    check({ glob: "dc0_c1_rp0_vm1999*", limit: 20 }, 11);
    check({ glob: "DC0_C0_RP0_VM4*", limit: 20 }, 20);
    check({ glob: "DC0_C0_RP0_VM4**", limit: 0 }, 0);
    // Any other pattern with a literal prefix: the names with that prefix (556 of the 20,000).
    check({ glob: "DC0_C0_RP0_VM4*9", limit: 20 }, 0.03 * N);
    view.close();
  });
});
