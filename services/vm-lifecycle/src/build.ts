import { VmCommandSchema, type VmCommand } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { commandService, openBucket, type CommandServiceDeps, type KV, type RunningCommandService } from "@iaas/runtime";
import { authorizeVmCommand } from "./guard.js";
import { runVmCommand } from "./lifecycle.js";
import { VmQuota } from "./quota.js";

export interface VmLifecycleDeps extends CommandServiceDeps {
  /** The same policy the gateway enforces (IAAS_POLICY or the default, plus IAAS_ADMINS). */
  policy: Policy;
  config: {
    /** Deadline of one vCenter task (create, clone, delete, reconfigure). */
    taskTimeoutMs: number;
    /** Deadline of a read (vm-get, vm-list) made by the policy checks. */
    lookupTimeoutMs: number;
    concurrency: number;
  };
}

/** A reservation outlives the command's vCenter task by this much before it lapses on its own (a crash). */
const QUOTA_HOLD_MARGIN_MS = 5 * 60_000;

/** vm-lifecycle, not started: `start()` opens the quota and approval buckets and begins consuming `iaas.cmd.vm.*`. */
export function buildVmLifecycleService(deps: VmLifecycleDeps): RunningCommandService {
  const { nc, policy, log } = deps;
  let quota: VmQuota | undefined;
  let approvals: KV | undefined;
  const quotaOf = () => {
    if (!quota) throw new Error("vm-lifecycle not started");
    return quota;
  };
  const inner = commandService(deps, {
    consumer: "vmLifecycle",
    schema: VmCommandSchema,
    // The guard, which takes the quota share of a create, clone or deploy; anything refused gives
    // the share back at once (the gateway's too, for a command it reserved).
    authorize: async (cmd: VmCommand) => {
      try {
        if (!approvals) throw new Error("vm-lifecycle not started");
        return await authorizeVmCommand({ nc, policy, lookupTimeoutMs: deps.config.lookupTimeoutMs, quota: quotaOf(), approvals }, cmd);
      } catch (err) {
        await quotaOf().release(cmd);
        throw err;
      }
    },
    // Released once the command ends either way: after success the proxy counts the new VM (it
    // answered only once it did), after a failure nothing was made. A retryable failure gives the
    // share back too; the next delivery reserves again, with a fresh check.
    handle: async (cmd, ctx) => {
      try {
        return await runVmCommand({ nc, policy, taskTimeoutMs: deps.config.taskTimeoutMs }, cmd, ctx);
      } finally {
        await quotaOf().release(cmd);
      }
    },
  });
  return {
    async start() {
      quota = new VmQuota({ nc, policy, log, kv: await openBucket(nc, "quotas"), holdMs: deps.config.taskTimeoutMs + QUOTA_HOLD_MARGIN_MS });
      approvals = await openBucket(nc, "approvals");
      await inner.start();
    },
    stop: () => inner.stop(),
  };
}
