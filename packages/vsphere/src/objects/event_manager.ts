import type { CallOptions, Vim25Client } from "../client.js";
import { ValidationError, isVimFault } from "../errors.js";
import { asMoRef, asNumber, asObj, asString } from "../parse.js";
import { defaultCollector } from "../property.js";
import type { EventFilterSpec, PostableEvent } from "../specs.js";
import { isSubtype } from "../schema.js";
import type { MoRef } from "../types.js";

/**
 * A decoded event: every field as sent, `_type` the event type (e.g. "AlarmStatusChangedEvent"),
 * entity arguments as `{ name, vm | host | datastore | datacenter | alarm | entity: MoRef }`.
 */
export interface VimEvent {
  _type: string;
  key: number;
  chainId: number;
  /** ISO 8601. */
  createdTime: string;
  userName: string;
  fullFormattedMessage?: string;
  datacenter?: { name: string; datacenter: MoRef };
  computeResource?: { name: string; computeResource: MoRef };
  host?: { name: string; host: MoRef };
  vm?: { name: string; vm: MoRef };
  ds?: { name: string; datastore: MoRef };
  [field: string]: unknown;
}

export function parseEvent(raw: unknown, where = "event"): VimEvent {
  const o = asObj(raw, where);
  return {
    ...o,
    _type: typeof o._type === "string" ? o._type : "Event",
    key: asNumber(o.key, `${where}.key`),
    chainId: asNumber(o.chainId, `${where}.chainId`),
    createdTime: asString(o.createdTime, `${where}.createdTime`),
    userName: typeof o.userName === "string" ? o.userName : "",
  };
}

function parseEvents(raw: unknown, method: string): VimEvent[] {
  return (Array.isArray(raw) ? raw : []).map((e, i) => parseEvent(e, `${method}[${i}]`));
}

/** The EventManager managed object. */
export class EventManager {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  /** QueryEvents: the matching events in one call (vCenter caps the count; newest first on vCenter). */
  async queryEvents(filter: EventFilterSpec, opts: CallOptions = {}): Promise<VimEvent[]> {
    const r = await this.client.invoke("QueryEvents", this.ref, [["filter", filter, "EventFilterSpec"]], {
      ...opts,
      returns: "Event[]",
    });
    return parseEvents(r, "QueryEvents");
  }

  /** CreateCollectorForEvents: a session-scoped EventHistoryCollector (recreated after a re-login). */
  async createCollectorForEvents(filter: EventFilterSpec, opts: CallOptions = {}): Promise<EventHistoryCollector> {
    const ref = await this.createRaw(filter, opts);
    return new EventHistoryCollector(this, ref, filter, this.client.sessionGeneration);
  }

  /** @internal */
  async createRaw(filter: EventFilterSpec, opts: CallOptions): Promise<MoRef> {
    const r = await this.client.invoke("CreateCollectorForEvents", this.ref, [["filter", filter, "EventFilterSpec"]], {
      ...opts,
      returns: "MoRef",
    });
    return asMoRef(r, "CreateCollectorForEvents");
  }

  /**
   * PostEvent. `_type` must name an Event subtype this package knows the fields of (vcsim crashes on
   * unknown ones); key/chainId/createdTime/userName are filled in for the XSD and replaced by vCenter.
   */
  async postEvent(event: PostableEvent, opts: CallOptions = {}): Promise<void> {
    if (!isSubtype(event._type, "Event")) {
      throw new ValidationError("eventToPost._type", `${event._type} is not an event type this client can encode`);
    }
    const full = { key: 0, chainId: 0, createdTime: new Date(0), userName: "", ...event };
    await this.client.invoke("PostEvent", this.ref, [["eventToPost", full, "Event"]], opts);
  }
}

/**
 * An EventHistoryCollector. It lives in the session that created it: after a re-login, the next call
 * finds it gone (ManagedObjectNotFound), creates a new one with the same filter and retries, so the
 * read position starts over. De-duplicate by `key`.
 */
export class EventHistoryCollector {
  constructor(
    readonly manager: EventManager,
    public ref: MoRef,
    readonly filter: EventFilterSpec,
    private generation: number,
  ) {}

  private get client(): Vim25Client {
    return this.manager.client;
  }

  private async withCollector<T>(fn: (ref: MoRef) => Promise<T>, opts: CallOptions): Promise<T> {
    try {
      return await fn(this.ref);
    } catch (err) {
      if (!isVimFault(err, "ManagedObjectNotFound") || this.client.sessionGeneration === this.generation) throw err;
      this.generation = this.client.sessionGeneration;
      this.ref = await this.manager.createRaw(this.filter, opts);
      return await fn(this.ref);
    }
  }

  /** ReadNextEvents: up to `maxCount` events after the read position (vcsim: newest first). */
  readNextEvents(maxCount: number, opts: CallOptions = {}): Promise<VimEvent[]> {
    return this.withCollector(async (ref) => {
      const r = await this.client.invoke("ReadNextEvents", ref, [["maxCount", maxCount, "int"]], { ...opts, returns: "Event[]" });
      return parseEvents(r, "ReadNextEvents");
    }, opts);
  }

  /** ReadPreviousEvents: up to `maxCount` events before the read position. */
  readPreviousEvents(maxCount: number, opts: CallOptions = {}): Promise<VimEvent[]> {
    return this.withCollector(async (ref) => {
      const r = await this.client.invoke("ReadPreviousEvents", ref, [["maxCount", maxCount, "int"]], {
        ...opts,
        returns: "Event[]",
      });
      return parseEvents(r, "ReadPreviousEvents");
    }, opts);
  }

  /** The `latestPage` property: the newest events, up to the page size. */
  latestPage(opts: CallOptions = {}): Promise<VimEvent[]> {
    return this.withCollector(async (ref) => {
      const [r] = await defaultCollector(this.client).retrieve([ref], ["latestPage"], opts);
      const fault = r ? Object.values(r.missing)[0] : undefined;
      if (fault) throw fault;
      const page = r?.props.latestPage;
      return (Array.isArray(page) ? page : page === undefined ? [] : [page]).map((e, i) =>
        parseEvent(e, `latestPage[${i}]`),
      );
    }, opts);
  }

  /** SetCollectorPageSize. */
  setCollectorPageSize(maxCount: number, opts: CallOptions = {}): Promise<void> {
    return this.withCollector(async (ref) => {
      await this.client.invoke("SetCollectorPageSize", ref, [["maxCount", maxCount, "int"]], opts);
    }, opts);
  }

  /** RewindCollector: move the read position back to the oldest event. */
  rewindCollector(opts: CallOptions = {}): Promise<void> {
    return this.withCollector(async (ref) => {
      await this.client.invoke("RewindCollector", ref, [], opts);
    }, opts);
  }

  /** ResetCollector: move the read position to just after the newest event. */
  resetCollector(opts: CallOptions = {}): Promise<void> {
    return this.withCollector(async (ref) => {
      await this.client.invoke("ResetCollector", ref, [], opts);
    }, opts);
  }

  /** DestroyCollector: frees it (vCenter caps collectors per session). A collector already gone is fine. */
  async destroyCollector(opts: CallOptions = {}): Promise<void> {
    try {
      await this.client.invoke("DestroyCollector", this.ref, [], opts);
    } catch (err) {
      if (!isVimFault(err, "ManagedObjectNotFound")) throw err;
    }
  }
}

