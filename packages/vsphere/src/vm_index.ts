import type { Vim25Client } from "./client.js";
import { asArray, isObj } from "./parse.js";
import { defaultCollector, defaultViewManager, type ContainerView, type PropertyCollector } from "./property.js";
import { EntityProps, VmProps } from "./props.js";
import { isMoRef, refKey, type MoRef } from "./types.js";

/** One VM (or template) as the index knows it. */
export interface IndexedVm {
  ref: MoRef;
  name: string;
  template: boolean;
  parent: MoRef | undefined;
}

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

const VM_PATHS = [VmProps.name, VmProps.parent, VmProps.template];
const ENTITY_PATHS = [EntityProps.name, EntityProps.parent];

/**
 * A live index of every VM's name, template flag and inventory path, kept by the property
 * collector instead of a listing per look-up (govmomi's `view.Manager` + `property.Wait`): one
 * private PropertyCollector with a filter over a ContainerView of the root folder (VMs, folders,
 * datacenters, vApps), then WaitForUpdatesEx in a loop. The first answer is the whole inventory;
 * later ones carry only what changed (a VM created, renamed, moved, marked as a template, deleted).
 *
 * It is an accelerator, not the truth: `live` is false until the first full answer, after any failed
 * call, and as soon as the client's session is renewed (the collector and view died with the old
 * session; the loop builds new ones). Callers fall back to asking vCenter when it is not live, and
 * when a name is not in it (a VM created a moment ago may not have arrived yet). Updates arrive
 * within milliseconds of the change, so what is left is the same race any listing has: a VM renamed
 * between the look-up and the operation.
 */
export class VmIndex {
  private readonly vms = new Map<string, IndexedVm>();
  private readonly byName = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, Node>();
  private generation = -1;
  private ready = false;
  private stopped = false;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
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

  /** Whether answers come from an up-to-date copy of vCenter's inventory. */
  get live(): boolean {
    return this.ready && !this.stopped && this.generation === this.client.sessionGeneration;
  }

  /** VMs and templates with exactly this name (several where folders hold namesakes). */
  lookup(name: string): IndexedVm[] {
    const keys = this.byName.get(name);
    return keys ? [...keys].flatMap((k) => this.vms.get(k) ?? []) : [];
  }

  get(ref: MoRef): IndexedVm | undefined {
    return this.vms.get(refKey(ref));
  }

  get size(): number {
    return this.vms.size;
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
      this.ready = false;
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
        this.clear();
        this.generation = gen;
        this.stats.builds++;
        let version = "";
        // The first answer is the whole inventory; `truncated` means more of it is waiting.
        for (;;) {
          if (this.stopped || this.client.sessionGeneration !== gen) break;
          const maxWait = version === "" || !this.ready ? 0 : (this.opts.maxWaitSeconds ?? 10);
          const update = await pc.waitForUpdatesEx(version, maxWait, { signal });
          if (update !== undefined) {
            if (typeof update.version === "string") version = update.version;
            this.apply(update);
            this.stats.updates++;
            if (update.truncated === true) continue;
          }
          if (!this.ready && this.client.sessionGeneration === gen) {
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
        const renewed = this.generation !== this.client.sessionGeneration || this.abort?.signal.aborted === true;
        this.ready = false;
        if (!renewed) {
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
      }
      this.ready = false;
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

  private clear(): void {
    this.vms.clear();
    this.byName.clear();
    this.nodes.clear();
  }

  private apply(update: Record<string, unknown>): void {
    for (const fu of asArray(update.filterSet)) {
      if (!isObj(fu)) continue;
      for (const ou of asArray(fu.objectSet)) {
        if (!isObj(ou) || !isMoRef(ou.obj)) continue;
        const ref = ou.obj;
        const key = refKey(ref);
        if (ou.kind === "leave") {
          this.removeVm(key);
          this.nodes.delete(key);
          continue;
        }
        const changes = new Map<string, unknown>();
        for (const pc of asArray(ou.changeSet)) {
          if (!isObj(pc) || typeof pc.name !== "string") continue;
          changes.set(pc.name, pc.op === "remove" || pc.op === "indirectRemove" ? undefined : pc.val);
        }
        if (ref.type === "VirtualMachine") {
          const prev = this.vms.get(key);
          const name = changes.has(VmProps.name) ? changes.get(VmProps.name) : prev?.name;
          const parent = changes.has(VmProps.parent) ? changes.get(VmProps.parent) : prev?.parent;
          const template = changes.has(VmProps.template) ? changes.get(VmProps.template) : prev?.template;
          this.removeVm(key);
          if (typeof name !== "string") continue;
          this.vms.set(key, { ref, name, template: template === true || template === "true", parent: isMoRef(parent) ? parent : undefined });
          let set = this.byName.get(name);
          if (!set) this.byName.set(name, (set = new Set()));
          set.add(key);
        } else {
          const prev = this.nodes.get(key);
          const name = changes.has(EntityProps.name) ? changes.get(EntityProps.name) : prev?.name;
          const parent = changes.has(EntityProps.parent) ? changes.get(EntityProps.parent) : prev?.parent;
          if (typeof name === "string") this.nodes.set(key, { name, parent: isMoRef(parent) ? parent : undefined });
        }
      }
    }
  }

  private removeVm(key: string): void {
    const prev = this.vms.get(key);
    if (!prev) return;
    this.vms.delete(key);
    const set = this.byName.get(prev.name);
    set?.delete(key);
    if (set?.size === 0) this.byName.delete(prev.name);
  }
}
