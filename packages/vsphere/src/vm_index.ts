import type { Vim25Client } from "./client.js";
import { parseCustomValues } from "./objects/custom_fields_manager.js";
import { asArray, isObj } from "./parse.js";
import { VimFault } from "./errors.js";
import { defaultCollector, defaultViewManager, type ContainerView, type ObjectProps, type PropertyCollector } from "./property.js";
import { EntityProps, VmProps } from "./props.js";
import { isMoRef, refKey, type MoRef } from "./types.js";

/** One VM (or template) as the index knows it. */
export interface IndexedVm {
  ref: MoRef;
  name: string;
  template: boolean;
  parent: MoRef | undefined;
  /** `runtime.powerState` as vCenter says it (poweredOn, poweredOff, suspended). */
  powerState: string;
  numCPU: number | undefined;
  memoryMB: number | undefined;
  /** Provisioned disk: the sum of the VM's VirtualDisk capacities. */
  diskKB: number;
  /**
   * Custom attribute values by field key (`customValue`): every attribute the VM carries, so a
   * caller reads its own (owner, team, a lease expiry) by the key vCenter gave its name.
   */
  customValues: ReadonlyMap<number, string>;
}

/**
 * A change to one VM of the index: `prev` what it held (undefined: the VM is new to it), `next`
 * what it holds now (undefined: the VM left it). An entry is never changed in place: a change is
 * a new object, so a view that keeps references can find the one it holds.
 */
export type VmChange = (prev: IndexedVm | undefined, next: IndexedVm | undefined) => void;

/** What a caller that changed a VM writes through (`note`): the index's own fields, less the parsed ones. */
export type NotedVm = Omit<IndexedVm, "customValues"> & { customValues?: ReadonlyMap<number, string> };

interface Node {
  name: string;
  parent: MoRef | undefined;
}

export interface VmIndexOptions {
  /** How long one WaitForUpdatesEx may block (seconds); also how soon a renewed session is noticed. */
  maxWaitSeconds?: number;
  /** First back-off after a failure; doubles up to 30 s. */
  retryMs?: number;
  logger?: { info?: (o: object, msg: string) => void; warn?: (o: object, msg: string) => void };
}

/**
 * What the feed watches of a VM: small values only, so its first answer (the whole inventory in
 * one WaitForUpdatesEx on a vCenter that ignores `maxObjectUpdates`, as the simulator does) stays
 * about 1.5 KB of XML per VM. Devices are not among them: with them a VM is several KB on the wire. `config.changeVersion` changes on every reconfiguration, which
 * is when the VM's disks are read again.
 */
const VM_PATHS = [VmProps.name, VmProps.parent, VmProps.template, VmProps.powerState, VmProps.numCPU, VmProps.memoryMB, VmProps.customValue, VmProps.changeVersion];

/**
 * Disk for quota counts is the sum of the VirtualDisk capacities in `config.hardware.device`,
 * kept as one number, and only for VMs that carry a custom value (quotas count VMs by owner and
 * team; others show 0): read DISK_CHUNK VMs per RetrievePropertiesEx when the index is built
 * (before it is live), then for a VM that gets a custom value (at once when this process wrote it)
 * or whose `config.changeVersion` moves. `summary.storage`
 * would be smaller on the wire, but vCenter refreshes it lazily and it counts swap, logs and
 * snapshots, so a VM just made would not show in it at once.
 */
const DISK_CHUNK = 500;

/**
 * How long a custom value this process wrote (`noteCustomValue`) wins over a different one the
 * feed reports: long enough for updates made before the write to drain, after which vCenter's word
 * holds again (someone changed it in the vSphere Client).
 */
const WRITE_WINS_MS = 30_000;

function diskKBOf(devices: unknown): number {
  let kb = 0;
  for (const d of asArray(devices)) {
    if (!isObj(d) || d._type !== "VirtualDisk") continue;
    const n = typeof d.capacityInKB === "number" ? d.capacityInKB : Number(d.capacityInKB);
    if (Number.isFinite(n)) kb += n;
  }
  return kb;
}

/** Whether a VM carries any custom value (an owner or a team among them): quotas count only such VMs. */
const carriesValues = (values: ReadonlyMap<number, string>): boolean => {
  for (const v of values.values()) if (v !== "") return true;
  return false;
};

/**
 * Objects per WaitForUpdatesEx answer asked of vCenter, which then answers a large inventory in
 * pieces (`truncated`). The simulator ignores it and answers all at once, which is why the answer
 * is also read piecewise (`onObjectUpdate`): either way one answer costs a bounded amount of memory.
 */
const MAX_OBJECT_UPDATES = 1000;

/** One shared empty map for the many VMs that carry no custom value. */
const NO_VALUES: ReadonlyMap<number, string> = new Map();

/**
 * A copy of a string kept by the index that does not hold on to the text it was cut from: V8 makes
 * a substring of 13 characters or more a view into its parent, and a VM name kept that way would
 * keep a whole batch of the XML answer alive.
 */
const own = (s: string): string => (s.length < 13 ? s : Buffer.from(s, "utf8").toString("utf8"));
/** Managed object types: few, so each is kept once. */
const types = new Map<string, string>();
const ownType = (t: string): string => {
  let v = types.get(t);
  if (v === undefined) types.set(t, (v = own(t)));
  return v;
};
const ownRef = (r: MoRef): MoRef => ({ type: ownType(r.type), value: own(r.value) });
const POWER_STATES = new Map(["poweredOn", "poweredOff", "suspended"].map((p) => [p, p]));
const ownPowerState = (p: string): string => POWER_STATES.get(p) ?? own(p);
const ownValues = (values: Map<number, string>): Map<number, string> => {
  for (const [k, v] of values) values.set(k, own(v));
  return values;
};

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : typeof v === "string" && v !== "" && Number.isFinite(Number(v)) ? Number(v) : undefined);
const ENTITY_PATHS = [EntityProps.name, EntityProps.parent];

/**
 * A live index of every VM's name, template flag, inventory path, power state, size and custom
 * values, kept by the property collector instead of a listing per look-up (govmomi's `view.Manager` + `property.Wait`): one
 * private PropertyCollector with a filter over a ContainerView of the root folder (VMs, folders,
 * datacenters, vApps), then WaitForUpdatesEx in a loop. The first answer is the whole inventory;
 * later ones carry only what changed (a VM created, renamed, moved, marked as a template, deleted).
 *
 * The first answer is read piecewise (`onObjectUpdate`: each ObjectUpdate as it arrives), so no
 * answer is ever one parsed tree whatever the inventory, and the strings kept are copied out of
 * the answer's text (about 400 bytes a VM in all).
 *
 * It is an accelerator, not the truth: `live` is false until the first full answer and after any
 * failed call. When the client's session is renewed (the collector and view died with the old
 * session) the loop builds new ones and rebuilds in place: the previous copy answers meanwhile, and
 * what the new full answer does not name is swept at its end. Callers fall back to asking vCenter when it is not live, and
 * when a name is not in it (a VM created a moment ago may not have arrived yet). Updates arrive
 * within milliseconds of the change, so what is left is the same race any listing has: a VM renamed
 * between the look-up and the operation.
 *
 * A caller that changed a VM writes the change through (`note`, `noteCustomValue`, `forget`), so
 * its next answer holds it without waiting for the feed. That is also the only way a custom value
 * reaches the index on the simulator: its SetField changes `customValue` without telling the
 * property collector, so the feed never reports it (vCenter does).
 */
export class VmIndex {
  private readonly vms = new Map<string, IndexedVm>();
  /** Keys by name: one key, or the keys of namesakes (a Set per name would cost ~200 bytes a VM). */
  private readonly byName = new Map<string, string | string[]>();
  /** Parent references, one object per parent (a VM's parent is one of few folders, pools or vApps). */
  private readonly parents = new Map<string, MoRef>();
  private readonly nodes = new Map<string, Node>();
  /** Custom values this process wrote, by VM and field key, until the feed confirms them. */
  private readonly written = new Map<string, Map<number, { value: string; at: number }>>();
  /** VMs this process deleted whose `leave` has not arrived: a late update must not bring them back. */
  private readonly gone = new Set<string>();
  /** VMs whose disks are to be read (appeared, or reconfigured, since the last read). */
  private readonly diskDue = new Map<string, MoRef>();
  /** VMs whose `diskKB` was read from their devices or written through (`note`). */
  private readonly diskKnown = new Set<string>();
  /** Set while a full answer is being read: every object it has named so far. */
  private building: Set<string> | undefined;
  private ready = false;
  private stopped = false;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private readonly listeners = new Set<VmChange>();
  /** Full rebuilds (the first one included) and update sets applied, for tests and metrics. */
  readonly stats = { builds: 0, updates: 0, failures: 0 };

  constructor(
    readonly client: Vim25Client,
    private readonly opts: VmIndexOptions = {},
  ) {}

  /** Starts the loop; resolves once the first full answer is in (or rejects with why it is not). */
  start(): Promise<void> {
    if (this.loop) return this.whenReady();
    this.loop = this.run();
    return this.whenReady();
  }

  /**
   * Whether answers come from a copy of vCenter's inventory that is kept up to date. It stays so
   * while a renewed session's rebuild runs: the previous copy answers until the new full answer
   * has replaced it (what changed meanwhile arrives with that answer).
   */
  get live(): boolean {
    return this.ready && !this.stopped;
  }

  /** VMs and templates with exactly this name (several where folders hold namesakes). */
  lookup(name: string): IndexedVm[] {
    const keys = this.byName.get(name);
    if (keys === undefined) return [];
    return (typeof keys === "string" ? [keys] : keys).flatMap((k) => this.vms.get(k) ?? []);
  }

  get(ref: MoRef): IndexedVm | undefined {
    return this.vms.get(refKey(ref));
  }

  get size(): number {
    return this.vms.size;
  }

  /** Every VM and template in the index. */
  all(): IterableIterator<IndexedVm> {
    return this.vms.values();
  }

  /**
   * Calls `fn` after every change to an entry (put, renamed, custom value, disks, removed), in
   * order, synchronously: a caller that walks `all()` and subscribes in the same turn misses
   * nothing. Returns the unsubscribe.
   */
  subscribe(fn: VmChange): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(prev: IndexedVm | undefined, next: IndexedVm | undefined): void {
    if (prev === next) return;
    for (const fn of this.listeners) {
      try {
        fn(prev, next);
      } catch (err) {
        this.opts.logger?.warn?.({ err, vm: (next ?? prev)?.ref.value }, "a view of the inventory index failed to take a change");
      }
    }
  }

  /** Writes through a VM this process made or changed; the feed's later word on it wins. */
  note(vm: NotedVm): void {
    const key = own(refKey(vm.ref));
    this.gone.delete(key);
    // A VM made during a rebuild may be missing from its answer, which must not sweep it away.
    this.building?.add(key);
    const prev = this.removeVm(key, false);
    this.put(key, { ...vm, ref: ownRef(vm.ref), name: own(vm.name), parent: vm.parent && this.parentRef(vm.parent), customValues: this.withWritten(key, new Map(vm.customValues ?? prev?.customValues ?? [])) }, prev);
    this.diskKnown.add(key);
  }

  /** Writes through a custom value this process set (SetField) on a VM. */
  noteCustomValue(ref: MoRef, fieldKey: number, value: string): void {
    const key = refKey(ref);
    let w = this.written.get(key);
    if (!w) this.written.set(key, (w = new Map()));
    w.set(fieldKey, { value, at: Date.now() });
    const prev = this.vms.get(key);
    if (prev) {
      const next = { ...prev, customValues: this.withWritten(key, new Map(prev.customValues)) };
      this.vms.set(key, next);
      this.changed(prev, next);
    }
    // A VM that just got an owner or a team counts in quotas from now on: its disks are read now.
    if (prev && !this.diskKnown.has(key) && this.live && this.building === undefined) {
      void this.readDisks([ref], undefined).catch((err: unknown) => this.opts.logger?.warn?.({ err, vm: ref.value }, "disks of a VM not read; its disk counts as 0 until it is reconfigured"));
    }
  }

  /** Writes through a VM this process deleted. */
  forget(ref: MoRef): void {
    const key = refKey(ref);
    this.removeVm(key);
    this.written.delete(key);
    this.gone.add(key);
  }

  /** `/DC0/vm/folder/name`, or undefined when a link of the chain is unknown (e.g. a VM in a vApp). */
  pathOf(ref: MoRef): string | undefined {
    const names: string[] = [];
    const root = refKey(this.client.serviceContent.rootFolder);
    let key = refKey(ref);
    for (let depth = 0; depth < 256; depth++) {
      if (key === root) return `/${names.reverse().join("/")}`;
      const n = this.vms.get(key) ?? this.nodes.get(key);
      if (!n?.parent) return undefined;
      names.push(n.name);
      key = refKey(n.parent);
    }
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.abort?.abort(new Error("index stopped"));
    this.wake?.();
    await this.loop?.catch(() => undefined);
  }

  private whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private settleWaiters(err?: unknown): void {
    const ws = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of ws) err === undefined ? w.resolve() : w.reject(err);
  }

  private async run(): Promise<void> {
    // A renewed session: the collector is gone; cut the long poll short and rebuild now.
    const unsubscribe = this.client.onSessionRenewed(() => {
      this.abort?.abort(new Error("vSphere session renewed"));
    });
    try {
      await this.feed();
    } finally {
      unsubscribe();
    }
  }

  private async feed(): Promise<void> {
    let backoff = this.opts.retryMs ?? 500;
    while (!this.stopped && !this.client.isClosed) {
      let pc: PropertyCollector | undefined;
      let view: ContainerView | undefined;
      try {
        this.abort = new AbortController();
        const signal = this.abort.signal;
        const gen = this.client.sessionGeneration;
        pc = await defaultCollector(this.client).createPropertyCollector({ signal });
        view = await defaultViewManager(this.client).createContainerView(this.client.serviceContent.rootFolder, ["VirtualMachine", "Folder", "Datacenter", "VirtualApp"], true, { signal });
        await pc.createFilter(
          {
            propSet: [
              { type: "VirtualMachine", pathSet: VM_PATHS },
              { type: "Folder", pathSet: ENTITY_PATHS },
              { type: "Datacenter", pathSet: ENTITY_PATHS },
              { type: "VirtualApp", pathSet: ENTITY_PATHS },
            ],
            objectSet: [{ obj: view.ref, skip: true, selectSet: [{ _type: "TraversalSpec", name: "view", type: "ContainerView", path: "view", skip: false }] }],
          },
          true,
          { signal },
        );
        // Rebuilt in place: what the full answer names replaces what the index held, and what it
        // does not name is swept away at its end. Until then the previous copy keeps answering.
        const seen = new Set<string>();
        this.building = seen;
        this.gone.clear();
        this.diskDue.clear();
        this.stats.builds++;
        let version = "";
        let built = false;
        const onObjectUpdate = (ou: Record<string, unknown>) => this.applyObject(ou);
        // The first answer is the whole inventory; `truncated` means more of it is waiting.
        for (;;) {
          if (this.stopped || this.client.sessionGeneration !== gen) break;
          const maxWait = built ? (this.opts.maxWaitSeconds ?? 10) : 0;
          const update = await pc.waitForUpdatesEx(version, maxWait, { signal, maxObjectUpdates: MAX_OBJECT_UPDATES, onObjectUpdate });
          if (update !== undefined) {
            if (typeof update.version === "string") version = update.version;
            this.stats.updates++;
            if (update.truncated === true) continue;
          }
          if (built && this.diskDue.size > 0) {
            const due = [...this.diskDue.values()];
            this.diskDue.clear();
            await this.readDisks(due, signal);
          }
          if (!built && this.client.sessionGeneration === gen) {
            this.sweep(seen);
            await this.readDisks([...this.vms.values()].filter((v) => carriesValues(v.customValues)).map((v) => v.ref), signal);
            this.building = undefined;
            built = true;
            this.ready = true;
            backoff = this.opts.retryMs ?? 500;
            this.opts.logger?.info?.({ vms: this.vms.size }, "inventory index is live");
            this.settleWaiters();
          }
        }
      } catch (err) {
        if (this.stopped) break;
        this.stats.failures++;
        // The session was renewed under us (its collector is gone): expected, rebuild at once. Any
        // other failure, a ManagedObjectNotFound without a renewal included, waits its back-off.
        const renewed = this.abort?.signal.aborted === true;
        if (!renewed) {
          this.ready = false;
          this.opts.logger?.warn?.({ err, retryInMs: backoff }, "inventory index lost its feed; look-ups ask vCenter until it is back");
          this.settleWaiters(err);
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, 30_000);
        }
      } finally {
        // Both belong to the session and would outlive this loop in it (a collector keeps gathering
        // changes for a poll that never comes): destroyed, unless the session is being closed anyway.
        if (pc && !this.client.isClosed) await pc.destroyPropertyCollector({ timeoutMs: 2000 }).catch(() => undefined);
        if (view && !this.client.isClosed) await view.destroyView({ timeoutMs: 2000 }).catch(() => undefined);
        this.building = undefined;
      }
    }
    this.ready = false;
    this.settleWaiters(new Error("index stopped"));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /**
   * Sets `diskKB` of these VMs from their devices, DISK_CHUNK per read, so one answer stays a few
   * MB whatever the inventory. A VM deleted meanwhile is skipped (its chunk read one by one).
   */
  private async readDisks(refs: readonly MoRef[], signal: AbortSignal | undefined): Promise<void> {
    const pc = defaultCollector(this.client);
    const read = (part: readonly MoRef[]) => pc.retrieve(part, [VmProps.devices], { signal });
    const gone = (e: unknown) => {
      if (e instanceof VimFault && e.faultType === "ManagedObjectNotFound") return [];
      throw e;
    };
    for (let i = 0; i < refs.length; i += DISK_CHUNK) {
      const part = refs.slice(i, i + DISK_CHUNK);
      let objects: ObjectProps[];
      try {
        objects = await read(part);
      } catch (err) {
        gone(err);
        objects = [];
        for (const ref of part) objects.push(...(await read([ref]).catch(gone)));
      }
      for (const o of objects) {
        const key = refKey(o.obj);
        const vm = this.vms.get(key);
        if (vm && VmProps.devices in o.props) {
          const next = { ...vm, diskKB: diskKBOf(o.props[VmProps.devices]) };
          this.vms.set(key, next);
          this.changed(vm, next);
          this.diskKnown.add(key);
        }
      }
    }
  }

  private parentRef(ref: MoRef): MoRef {
    const key = refKey(ref);
    let p = this.parents.get(key);
    if (p === undefined) this.parents.set(own(key), (p = ownRef(ref)));
    return p;
  }

  /** The end of a full answer: what it did not name is gone from vCenter. */
  private sweep(seen: ReadonlySet<string>): void {
    for (const key of [...this.vms.keys()]) {
      if (seen.has(key)) continue;
      this.removeVm(key);
      this.diskKnown.delete(key);
    }
    for (const key of [...this.nodes.keys()]) if (!seen.has(key)) this.nodes.delete(key);
    this.parents.clear();
    for (const v of this.vms.values()) if (v.parent) this.parents.set(refKey(v.parent), v.parent);
    for (const n of this.nodes.values()) if (n.parent) this.parents.set(refKey(n.parent), n.parent);
    // Writes kept for VMs the fresh inventory no longer has (deleted elsewhere) go too.
    for (const key of [...this.written.keys()]) if (!this.vms.has(key)) this.written.delete(key);
  }

  /** Adds a VM whose earlier entry (`prev`, already taken out by `removeVm(key, false)`) it replaces. */
  private put(key: string, vm: IndexedVm, prev: IndexedVm | undefined): void {
    if (vm.customValues.size === 0) vm = { ...vm, customValues: NO_VALUES };
    this.vms.set(key, vm);
    const keys = this.byName.get(vm.name);
    if (keys === undefined) this.byName.set(vm.name, key);
    else if (typeof keys === "string") {
      if (keys !== key) this.byName.set(vm.name, [keys, key]);
    } else if (!keys.includes(key)) keys.push(key);
    this.changed(prev, vm);
  }

  /**
   * `values` with this process's own writes laid over them: a write the feed now reports is
   * confirmed and dropped; one it contradicts still wins for WRITE_WINS_MS (the update may predate
   * the write), then vCenter's value holds.
   */
  private withWritten(key: string, values: Map<number, string>, fromFeed = false): Map<number, string> {
    const w = this.written.get(key);
    if (!w) return values;
    const now = Date.now();
    for (const [k, { value, at }] of w) {
      if (fromFeed && values.get(k) === value) w.delete(k);
      else if (fromFeed && now - at > WRITE_WINS_MS) w.delete(k);
      else values.set(k, value);
    }
    if (w.size === 0) this.written.delete(key);
    return values;
  }

  /** One ObjectUpdate of the feed. An `enter` names all of an object (a full answer is made of them). */
  private applyObject(ou: Record<string, unknown>): void {
    if (!isMoRef(ou.obj)) return;
    const ref = ou.obj;
    // Kept as a map key: a copy of its own, not a string made of pieces of the answer.
    const key = own(refKey(ref));
    if (ou.kind === "leave") {
      this.removeVm(key);
      this.diskKnown.delete(key);
      this.nodes.delete(key);
      this.gone.delete(key);
      this.written.delete(key);
      return;
    }
    if (this.gone.has(key)) return;
    const enter = ou.kind === "enter";
    if (enter) this.building?.add(key);
    const changes = new Map<string, unknown>();
    for (const pc of asArray(ou.changeSet)) {
      if (!isObj(pc) || typeof pc.name !== "string") continue;
      changes.set(pc.name, pc.op === "remove" || pc.op === "indirectRemove" ? undefined : pc.val);
    }
    // A path an `enter` leaves out is unset; only a `modify` keeps what the index had.
    const had = (path: string, prior: unknown): unknown => (changes.has(path) ? changes.get(path) : enter ? undefined : prior);
    if (ref.type === "VirtualMachine") {
      const prev = this.vms.get(key);
      const name = had(VmProps.name, prev?.name);
      const parent = had(VmProps.parent, prev?.parent);
      const template = had(VmProps.template, prev?.template);
      const powerState = had(VmProps.powerState, prev?.powerState);
      const numCPU = changes.has(VmProps.numCPU) ? num(changes.get(VmProps.numCPU)) : enter ? undefined : prev?.numCPU;
      const memoryMB = changes.has(VmProps.memoryMB) ? num(changes.get(VmProps.memoryMB)) : enter ? undefined : prev?.memoryMB;
      const diskKB = prev?.diskKB ?? 0;
      const customValues = changes.has(VmProps.customValue)
        ? this.withWritten(key, ownValues(parseCustomValues(changes.get(VmProps.customValue))), true)
        : enter
          ? this.withWritten(key, new Map(), true)
          : (prev?.customValues ?? this.withWritten(key, new Map()));
      // A build reads the disks of VMs with custom values at its end; later, a VM that gets one,
      // or one reconfigured.
      if (this.building === undefined && carriesValues(customValues) && (!this.diskKnown.has(key) || changes.has(VmProps.changeVersion))) this.diskDue.set(key, ref);
      const removed = this.removeVm(key, false);
      if (typeof name !== "string") {
        this.changed(removed, undefined);
        return;
      }
      this.put(key, {
        ref: prev?.ref ?? ownRef(ref),
        name: name === prev?.name ? prev.name : own(name),
        template: template === true || template === "true",
        parent: isMoRef(parent) ? this.parentRef(parent) : undefined,
        powerState: typeof powerState === "string" ? ownPowerState(powerState) : "poweredOff",
        numCPU,
        memoryMB,
        diskKB,
        customValues,
      }, removed);
    } else {
      const prev = this.nodes.get(key);
      const name = had(EntityProps.name, prev?.name);
      const parent = had(EntityProps.parent, prev?.parent);
      if (typeof name === "string") this.nodes.set(key, { name: name === prev?.name ? prev.name : own(name), parent: isMoRef(parent) ? this.parentRef(parent) : undefined });
      else this.nodes.delete(key);
    }
  }

  /**
   * Takes a VM out; `tell: false` when the caller puts its next entry at once (and tells both as
   * one change). Returns the entry it held.
   */
  private removeVm(key: string, tell = true): IndexedVm | undefined {
    const prev = this.vms.get(key);
    if (!prev) return undefined;
    this.vms.delete(key);
    const keys = this.byName.get(prev.name);
    if (keys === key) this.byName.delete(prev.name);
    else if (Array.isArray(keys)) {
      const rest = keys.filter((k) => k !== key);
      if (rest.length === 1) this.byName.set(prev.name, rest[0]!);
      else this.byName.set(prev.name, rest);
    }
    if (tell) this.changed(prev, undefined);
    return prev;
  }
}
