import type { CallOptions, VimClient } from "./client.js";
import { TimeoutError, VimFault } from "./errors.js";
import { asArray, asObj, isObj } from "./parse.js";
import type { MoRef } from "./types.js";

export type TaskState = "queued" | "running" | "success" | "error";

export interface TaskInfo {
  key: string;
  task: MoRef;
  name?: string;
  descriptionId: string;
  entity?: MoRef;
  entityName?: string;
  state: TaskState;
  cancelled: boolean;
  cancelable: boolean;
  error?: { fault: Record<string, unknown>; localizedMessage?: string };
  result?: unknown;
  progress?: number;
  queueTime: string;
  startTime?: string;
  completeTime?: string;
  [field: string]: unknown;
}

export interface WaitOptions extends CallOptions {
  /** Give up after this long (the task may still finish in vCenter); default 10 minutes. */
  timeoutMs?: number;
  /**
   * Read the task's state once before setting up a collector (default true). The simulator
   * finishes every task inside its method call, so tests of the collector path turn it off.
   */
  firstRead?: boolean;
}

/** What a wait reads of a task: enough to tell running from done, and the result or fault. */
export const TASK_STATE_PATHS: readonly string[] = ["info.state", "info.error", "info.result"];
const WAIT_PATHS = [...TASK_STATE_PATHS];

/** A task's state as read (TASK_STATE_PATHS): over, with its result, or not yet. */
export type TaskOutcome = { done: true; result: unknown } | { done: false };

/** A LocalizedMethodFault (task `info.error`, missingSet entries) as a VimFault. */
export function faultFromLocalized(lmf: unknown, ctx: { method?: string | undefined; task?: MoRef | undefined } = {}): VimFault {
  const o = isObj(lmf) ? lmf : {};
  const fault = isObj(o.fault) ? o.fault : {};
  const type = typeof fault._type === "string" ? fault._type : "MethodFault";
  return new VimFault(type, fault, typeof o.localizedMessage === "string" ? o.localizedMessage : "", ctx);
}

/** A Task managed object (govmomi `object.Task`). */
export class Task {
  constructor(
    readonly client: VimClient,
    readonly ref: MoRef,
    /** The `*_Task` method that started it, for error messages. */
    readonly method?: string,
  ) {}

  /** Reads `info` once. */
  async info(opts: CallOptions = {}): Promise<TaskInfo> {
    const [r] = await this.client.retrieve([this.ref], ["info"], opts);
    const missing = r ? Object.values(r.missing)[0] : undefined;
    if (missing) throw missing;
    return asObj(r?.props.info, "Task.info") as TaskInfo;
  }

  /**
   * Reads the task's state once; if it is still running, waits for it to finish through a private property collector (CreatePropertyCollector →
   * CreateFilter on info.state/error/result → WaitForUpdatesEx loop → DestroyPropertyCollector), as
   * govmomi's task.Wait does; no polling. Resolves with `info.result` (e.g. the new VM for CloneVM_Task),
   * throws the task's fault as a VimFault, or a TimeoutError carrying the task moref when the deadline
   * passes first. WaitForUpdatesEx waits in whole seconds, so the deadline may be overshot by < 1 s.
   */
  async wait(opts: WaitOptions = {}): Promise<unknown> {
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    const call: CallOptions = { signal: opts.signal };
    // One read first: a task that is already over (quick ones often are by the time their method
    // returns) needs no collector. The read costs one round trip where the wait below costs four.
    if (opts.firstRead !== false) {
      const [first] = await this.client.retrieve([this.ref], WAIT_PATHS, call);
      const missing = first ? Object.values(first.missing)[0] : undefined;
      if (missing) throw missing;
      const now = this.outcome(first?.props ?? {});
      if (now.done) return now.result;
    }
    return this.client.withSessionObjects(async () => {
      const pc = await this.client.propertyCollector.createPropertyCollector(call);
      try {
        await pc.createFilter(
          { propSet: [{ type: "Task", pathSet: WAIT_PATHS }], objectSet: [{ obj: this.ref, skip: false }] },
          false,
          call,
        );
        const state: Record<string, unknown> = {};
        let version = "";
        for (;;) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) {
            throw new TimeoutError(`task ${this.ref.value} (${this.method ?? "task"}) did not finish within ${timeoutMs} ms`, {
              timeoutMs,
              method: this.method,
              task: this.ref,
            });
          }
          const update = await pc.waitForUpdatesEx(version, Math.min(60, Math.ceil(remaining / 1000)), call);
          if (update !== undefined) {
            version = typeof update.version === "string" ? update.version : version;
            this.apply(update, state);
          }
          if (state["info.state"] === "success") return state["info.result"];
          if (state["info.state"] === "error") {
            this.client.stats.faults++;
            throw faultFromLocalized(state["info.error"], { method: this.method, task: this.ref });
          }
        }
      } finally {
        await pc.destroyPropertyCollector().catch(() => undefined);
      }
    });
  }

  /**
   * Reads a read of TASK_STATE_PATHS (made by the caller, e.g. together with other objects in one
   * RetrievePropertiesEx): the result when the task succeeded, its fault thrown when it failed.
   */
  outcome(props: Record<string, unknown>): TaskOutcome {
    if (props["info.state"] === "success") return { done: true, result: props["info.result"] };
    if (props["info.state"] === "error") {
      this.client.stats.faults++;
      throw faultFromLocalized(props["info.error"], { method: this.method, task: this.ref });
    }
    return { done: false };
  }

  private apply(update: Record<string, unknown>, state: Record<string, unknown>): void {
    for (const fu of asArray(update.filterSet)) {
      if (!isObj(fu)) continue;
      for (const mo of asArray(fu.missingSet)) {
        // The task itself is gone (vCenter forgets finished tasks after a while).
        if (isObj(mo)) throw faultFromLocalized(mo.fault, { method: this.method, task: this.ref });
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
}
