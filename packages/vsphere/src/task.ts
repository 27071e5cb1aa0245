import type { CallOptions, Vim25Client } from "./client.js";
import { TimeoutError } from "./errors.js";
import { asObj } from "./parse.js";
import { defaultCollector, faultFromLocalized } from "./property.js";
import { TaskProps } from "./props.js";
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
export const TASK_STATE_PATHS: readonly string[] = [TaskProps.state, TaskProps.error, TaskProps.result];

/** A task's state as read (TASK_STATE_PATHS): over, with its result, or not yet. */
export type TaskOutcome = { done: true; result: unknown } | { done: false };

/** A Task managed object (govmomi `object.Task`). */
export class Task {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
    /** The `*_Task` method that started it, for error messages. */
    readonly method?: string,
  ) {}

  /** Reads `info` once. */
  async info(opts: CallOptions = {}): Promise<TaskInfo> {
    const [r] = await defaultCollector(this.client).retrieve([this.ref], [TaskProps.info], opts);
    const missing = r ? Object.values(r.missing)[0] : undefined;
    if (missing) throw missing;
    return asObj(r?.props[TaskProps.info], "Task.info") as TaskInfo;
  }

  /**
   * Reads the task's state once; if it is still running, waits for it to finish through
   * PropertyCollector.waitFor on info.state/error/result, as govmomi's task.Wait does; no polling.
   * Resolves with `info.result` (e.g. the new VM for CloneVM_Task), throws the task's fault as a
   * VimFault, or a TimeoutError carrying the task moref when the deadline passes first (overshot by
   * < 1 s: WaitForUpdatesEx waits in whole seconds).
   */
  async wait(opts: WaitOptions = {}): Promise<unknown> {
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    const pc = defaultCollector(this.client);
    // One read first: a task that is already over (quick ones often are by the time their method
    // returns) needs no collector. The read costs one round trip where the wait below costs four.
    if (opts.firstRead !== false) {
      const [first] = await pc.retrieve([this.ref], TASK_STATE_PATHS, { signal: opts.signal });
      const missing = first ? Object.values(first.missing)[0] : undefined;
      if (missing) throw missing;
      const now = this.outcome(first?.props ?? {});
      if (now.done) return now.result;
    }
    let result: unknown;
    await pc.waitFor(
      this.ref,
      TASK_STATE_PATHS,
      (props) => {
        const now = this.outcome(props);
        if (now.done) result = now.result;
        return now.done;
      },
      deadline,
      {
        signal: opts.signal,
        method: this.method,
        timeoutError: () =>
          new TimeoutError(`task ${this.ref.value} (${this.method ?? "task"}) did not finish within ${timeoutMs} ms`, {
            timeoutMs,
            method: this.method,
            task: this.ref,
          }),
      },
    );
    return result;
  }

  /**
   * Reads a read of TASK_STATE_PATHS (made by the caller, e.g. together with other objects in one
   * RetrievePropertiesEx): the result when the task succeeded, its fault thrown when it failed.
   */
  outcome(props: Record<string, unknown>): TaskOutcome {
    if (props[TaskProps.state] === "success") return { done: true, result: props[TaskProps.result] };
    if (props[TaskProps.state] === "error") {
      this.client.stats.faults++;
      throw faultFromLocalized(props[TaskProps.error], { method: this.method, task: this.ref });
    }
    return { done: false };
  }
}
