import type { CallOptions, Vim25Client } from "./client.js";
import { TimeoutError, VimFault } from "./errors.js";
import { asArray, asMoRef, asString, isObj, type Obj } from "./parse.js";
import { refKey, type MoRef } from "./types.js";

/** One object's properties from the property collector. */
export interface ObjectProps {
  obj: MoRef;
  /** Property path → decoded value. Unset properties are absent. */
  props: Record<string, unknown>;
  /** Paths vCenter could not read, with the fault (e.g. InvalidProperty for a path the type lacks). */
  missing: Record<string, VimFault>;
}

export interface RetrieveContainerOptions extends CallOptions {
  /** Where to look; default the root folder. */
  container?: MoRef;
  /** Include objects in nested folders/pools; default true. */
  recursive?: boolean;
  /** Page size hint (RetrieveOptions.maxObjects); the rest is fetched with ContinueRetrievePropertiesEx. */
  maxObjects?: number;
}

export interface PropertySpec {
  type: string;
  all?: boolean;
  pathSet?: string[];
}

export interface SelectionSpec {
  _type?: "SelectionSpec";
  name: string;
}

export interface TraversalSpec {
  _type: "TraversalSpec";
  name?: string;
  type: string;
  path: string;
  skip?: boolean;
  selectSet?: Array<TraversalSpec | SelectionSpec>;
}

export interface ObjectSpec {
  obj: MoRef;
  skip?: boolean;
  selectSet?: Array<TraversalSpec | SelectionSpec>;
}

export interface PropertyFilterSpec {
  propSet: PropertySpec[];
  objectSet: ObjectSpec[];
  reportMissingObjectsInResults?: boolean;
}

export interface WaitForOptions {
  signal?: AbortSignal;
  /** What to throw when the deadline passes; default a TimeoutError naming the object and paths. */
  timeoutError?: () => Error;
  /** Named in the fault thrown when the object is gone (vCenter forgets finished tasks after a while). */
  method?: string | undefined;
}

/** A LocalizedMethodFault (task `info.error`, missingSet entries) as a VimFault. */
export function faultFromLocalized(lmf: unknown, ctx: { method?: string | undefined; task?: MoRef | undefined } = {}): VimFault {
  const o = isObj(lmf) ? lmf : {};
  const fault = isObj(o.fault) ? o.fault : {};
  const type = typeof fault._type === "string" ? fault._type : "MethodFault";
  return new VimFault(type, fault, typeof o.localizedMessage === "string" ? o.localizedMessage : "", ctx);
}

/** The session's PropertyCollector (govmomi `property.DefaultCollector`). */
export function defaultCollector(client: Vim25Client): PropertyCollector {
  return new PropertyCollector(client, client.serviceContent.propertyCollector);
}

/** The session's ViewManager; throws when the server has none. */
export function defaultViewManager(client: Vim25Client): ViewManager {
  return new ViewManager(client, client.serviceRef("viewManager"));
}

/** A RetrieveResult page. */
interface Page {
  token?: string;
  objects: ObjectProps[];
}

/**
 * RetrievePropertiesEx does not fault when the session is gone: it answers 200 with a
 * NotAuthenticated fault in every object's missingSet (vcsim; vCenter faults). Turning that into a
 * thrown fault lets the client's re-login path handle both.
 */
function throwIfNotAuthenticated(method: string, result: unknown): void {
  if (!isObj(result)) return;
  for (const oc of asArray(result.objects)) {
    if (!isObj(oc)) continue;
    for (const m of asArray(oc.missingSet)) {
      const fault = isObj(m) && isObj(m.fault) ? m.fault.fault : undefined;
      if (isObj(fault) && fault._type === "NotAuthenticated") {
        throw new VimFault("NotAuthenticated", fault, "", { method });
      }
    }
  }
}

function toPage(raw: unknown): Page {
  if (raw === undefined) return { objects: [] };
  const r = raw as Obj;
  const objects = asArray(r.objects).map((oc, i) => {
    const o = oc as Obj;
    const props: Record<string, unknown> = {};
    for (const p of asArray(o.propSet)) {
      const dp = p as Obj;
      props[asString(dp.name, `objects[${i}].propSet.name`)] = dp.val;
    }
    const missing: Record<string, VimFault> = {};
    for (const m of asArray(o.missingSet)) {
      const mp = m as Obj;
      missing[asString(mp.path, `objects[${i}].missingSet.path`)] = faultFromLocalized(mp.fault, { method: "RetrievePropertiesEx" });
    }
    return { obj: asMoRef(o.obj, `objects[${i}].obj`), props, missing };
  });
  return typeof r.token === "string" && r.token !== "" ? { token: r.token, objects } : { objects };
}

/** The PropertyCollector managed object (govmomi `property.Collector`). */
export class PropertyCollector {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  /** RetrievePropertiesEx + ContinueRetrievePropertiesEx until the token runs out. */
  async retrievePropertiesEx(
    specSet: readonly PropertyFilterSpec[],
    opts: CallOptions & { maxObjects?: number | undefined } = {},
  ): Promise<ObjectProps[]> {
    const check = (r: unknown): void => throwIfNotAuthenticated("RetrievePropertiesEx", r);
    const page = toPage(
      await this.client.invoke(
        "RetrievePropertiesEx",
        this.ref,
        [
          ["specSet", specSet, "PropertyFilterSpec[]"],
          ["options", { maxObjects: opts.maxObjects }, "RetrieveOptions"],
        ],
        { ...opts, returns: "RetrieveResult", check },
      ),
    );
    const all = [...page.objects];
    let token = page.token;
    try {
      while (token !== undefined) {
        const next = toPage(
          await this.client.invoke("ContinueRetrievePropertiesEx", this.ref, [["token", token, "string"]], {
            ...opts,
            returns: "RetrieveResult",
            check,
          }),
        );
        all.push(...next.objects);
        token = next.token;
      }
    } catch (err) {
      // An abandoned result set holds server memory until the session ends.
      if (token !== undefined) {
        await this.client.invoke("CancelRetrievePropertiesEx", this.ref, [["token", token, "string"]]).catch(() => undefined);
      }
      throw err;
    }
    return all;
  }

  /**
   * Properties of the given objects, in the order given (one round trip). A deleted object fails the
   * whole call with a ManagedObjectNotFound VimFault; unreadable paths land in `missing`.
   */
  async retrieve(objs: readonly MoRef[], paths: readonly string[], opts: CallOptions = {}): Promise<ObjectProps[]> {
    if (objs.length === 0) return [];
    const types = [...new Set(objs.map((o) => o.type))];
    const results = await this.retrievePropertiesEx(
      [
        {
          propSet: types.map((type) => ({ type, pathSet: [...paths] })),
          objectSet: objs.map((obj) => ({ obj, skip: false })),
        },
      ],
      opts,
    );
    const byRef = new Map(results.map((r) => [refKey(r.obj), r]));
    return objs.map((obj) => byRef.get(refKey(obj)) ?? { obj, props: {}, missing: {} });
  }

  /**
   * Properties of every `type` object under a container, through a ContainerView that is destroyed
   * afterwards: CreateContainerView → RetrievePropertiesEx (view traversal, skip the view itself) →
   * ContinueRetrievePropertiesEx while a token comes back → DestroyView. If the session is renewed
   * half-way, the view is gone with it and the whole sequence runs again.
   */
  retrieveContainer(type: string, paths: readonly string[], opts: RetrieveContainerOptions = {}): Promise<ObjectProps[]> {
    const container = opts.container ?? this.client.serviceContent.rootFolder;
    return this.client.withSessionObjects(async () => {
      const view = await defaultViewManager(this.client).createContainerView(container, [type], opts.recursive ?? true, opts);
      try {
        return await this.retrievePropertiesEx(
          [
            {
              propSet: [{ type, pathSet: [...paths] }],
              objectSet: [
                {
                  obj: view.ref,
                  skip: true,
                  selectSet: [{ _type: "TraversalSpec", name: "view", type: "ContainerView", path: "view", skip: false }],
                },
              ],
            },
          ],
          opts,
        );
      } finally {
        await view.destroyView().catch(() => undefined);
      }
    });
  }

  /**
   * Properties of every `type` object under a container, handed to `onPage` `chunk` objects at a
   * time: the view's list of objects first (MoRefs only), then one RetrieveProperties per chunk of
   * them. Memory is one chunk whatever the inventory, on a vCenter that ignores
   * `RetrieveOptions.maxObjects` as well (the simulator answers everything in one page). An object
   * deleted between the two steps is left out (its chunk is read again one object at a time).
   */
  async eachInContainer(type: string, paths: readonly string[], chunk: number, onPage: (objects: ObjectProps[]) => void, opts: RetrieveContainerOptions = {}): Promise<void> {
    const container = opts.container ?? this.client.serviceContent.rootFolder;
    const refs = await this.client.withSessionObjects(async () => {
      const view = await defaultViewManager(this.client).createContainerView(container, [type], opts.recursive ?? true, opts);
      try {
        const [r] = await this.retrieve([view.ref], ["view"], opts);
        return asArray(r?.props.view).map((v) => asMoRef(v, "view"));
      } finally {
        await view.destroyView().catch(() => undefined);
      }
    });
    for (let i = 0; i < refs.length; i += chunk) {
      const part = refs.slice(i, i + chunk);
      let objects: ObjectProps[];
      try {
        objects = await this.retrieve(part, paths, opts);
      } catch (err) {
        if (!(err instanceof VimFault && err.faultType === "ManagedObjectNotFound")) throw err;
        objects = [];
        for (const ref of part) {
          const one = await this.retrieve([ref], paths, opts).catch((e: unknown) => {
            if (e instanceof VimFault && e.faultType === "ManagedObjectNotFound") return [];
            throw e;
          });
          objects.push(...one);
        }
      }
      onPage(objects);
    }
  }

  /**
   * Waits until `done` accepts the values of `paths` of `obj`, through a private collector
   * (CreatePropertyCollector → CreateFilter → WaitForUpdatesEx loop → DestroyPropertyCollector), as
   * govmomi's property.Wait does; no polling. `done` sees every path that is set (unset ones are
   * absent) after each update, the first one being the current values; it may throw to stop the wait
   * with that error. Resolves with the values `done` accepted. An object that is gone throws its
   * fault (ManagedObjectNotFound); passing `deadline` (a Date.now() time) throws `timeoutError()`.
   * WaitForUpdatesEx waits in whole seconds, so the deadline may be overshot by < 1 s. Runs again
   * from the start if the session is renewed under it (the collector died with the old session).
   */
  waitFor(
    obj: MoRef,
    paths: readonly string[],
    done: (props: Record<string, unknown>) => boolean,
    deadline: number,
    opts: WaitForOptions = {},
  ): Promise<Record<string, unknown>> {
    const call: CallOptions = { signal: opts.signal };
    const timeoutMs = Math.max(0, deadline - Date.now());
    const timeout =
      opts.timeoutError ??
      (() => new TimeoutError(`${obj.value}.${paths.join(",")} did not reach the expected value within ${timeoutMs} ms`, { timeoutMs, method: opts.method }));
    return this.client.withSessionObjects(async () => {
      const pc = await this.createPropertyCollector(call);
      try {
        await pc.createFilter({ propSet: [{ type: obj.type, pathSet: [...paths] }], objectSet: [{ obj, skip: false }] }, false, call);
        const state: Record<string, unknown> = {};
        let version = "";
        for (;;) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) throw timeout();
          const update = await pc.waitForUpdatesEx(version, Math.min(60, Math.ceil(remaining / 1000)), call);
          if (update !== undefined) {
            if (typeof update.version === "string") version = update.version;
            applyChanges(update, state, (fault) => faultFromLocalized(fault, { method: opts.method, task: obj.type === "Task" ? obj : undefined }));
          }
          if (done(state)) return state;
        }
      } finally {
        await pc.destroyPropertyCollector().catch(() => undefined);
      }
    });
  }

  /** CreatePropertyCollector: a private collector (session-scoped) for filters and WaitForUpdatesEx. */
  async createPropertyCollector(opts: CallOptions = {}): Promise<PropertyCollector> {
    const ref = await this.client.invoke("CreatePropertyCollector", this.ref, [], { ...opts, returns: "MoRef" });
    return new PropertyCollector(this.client, asMoRef(ref, "CreatePropertyCollector"));
  }

  /** CreateFilter; returns the PropertyFilter moref. */
  async createFilter(spec: PropertyFilterSpec, partialUpdates: boolean, opts: CallOptions = {}): Promise<MoRef> {
    const ref = await this.client.invoke(
      "CreateFilter",
      this.ref,
      [
        ["spec", spec, "PropertyFilterSpec"],
        ["partialUpdates", partialUpdates, "boolean"],
      ],
      { ...opts, returns: "MoRef" },
    );
    return asMoRef(ref, "CreateFilter");
  }

  /**
   * WaitForUpdatesEx: blocks up to `maxWaitSeconds` for changes after `version` ("" for the first
   * call). Returns undefined when nothing changed in time. The HTTP timeout is stretched past the wait.
   *
   * `maxObjectUpdates` asks vCenter to answer in pieces (`truncated` says more is waiting; the
   * simulator ignores it). With `onObjectUpdate`, each ObjectUpdate is handed over while the answer
   * arrives and the UpdateSet returned carries none (its filterSet keeps `filter` and `missingSet`):
   * an answer holding a whole inventory is never one parsed tree.
   */
  async waitForUpdatesEx(
    version: string,
    maxWaitSeconds: number,
    opts: CallOptions & { maxObjectUpdates?: number | undefined; onObjectUpdate?: ((update: Obj) => void) | undefined } = {},
  ): Promise<Record<string, unknown> | undefined> {
    const timeoutMs = (opts.timeoutMs ?? this.client.timeoutMs) + maxWaitSeconds * 1000;
    const onObjectUpdate = opts.onObjectUpdate;
    const r = await this.client.invoke(
      "WaitForUpdatesEx",
      this.ref,
      [
        ["version", version, "string"],
        ["options", { maxWaitSeconds, maxObjectUpdates: opts.maxObjectUpdates }, "WaitOptions"],
      ],
      {
        signal: opts.signal,
        timeoutMs,
        returns: "UpdateSet",
        ...(onObjectUpdate ? { each: { path: ["filterSet", "objectSet"], type: "ObjectUpdate", fn: (v: unknown) => isObj(v) && onObjectUpdate(v) } } : {}),
      },
    );
    return isObj(r) ? r : undefined;
  }

  /** DestroyPropertyCollector: also destroys its filters. */
  async destroyPropertyCollector(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("DestroyPropertyCollector", this.ref, [], opts);
  }
}

/** Folds one UpdateSet of a single-object filter into `state` (path → value); a missing object throws. */
function applyChanges(update: Record<string, unknown>, state: Record<string, unknown>, gone: (fault: unknown) => Error): void {
  for (const fu of asArray(update.filterSet)) {
    if (!isObj(fu)) continue;
    for (const mo of asArray(fu.missingSet)) {
      if (isObj(mo)) throw gone(mo.fault);
    }
    for (const ou of asArray(fu.objectSet)) {
      if (!isObj(ou)) continue;
      for (const pc of asArray(ou.changeSet)) {
        if (!isObj(pc) || typeof pc.name !== "string") continue;
        if (pc.op === "remove" || pc.op === "indirectRemove" || pc.val === undefined) delete state[pc.name];
        else state[pc.name] = pc.val;
      }
    }
  }
}

export class ViewManager {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  async createContainerView(
    container: MoRef,
    types: readonly string[],
    recursive: boolean,
    opts: CallOptions = {},
  ): Promise<ContainerView> {
    const ref = await this.client.invoke(
      "CreateContainerView",
      this.ref,
      [
        ["container", container, "MoRef"],
        ["type", types, "string[]"],
        ["recursive", recursive, "boolean"],
      ],
      { ...opts, returns: "MoRef" },
    );
    return new ContainerView(this.client, asMoRef(ref, "CreateContainerView"));
  }
}

export class ContainerView {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  async destroyView(opts: CallOptions = {}): Promise<void> {
    await this.client.invoke("DestroyView", this.ref, [], opts);
  }
}
