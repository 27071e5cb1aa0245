import { hostname } from "node:os";
import { SnapshotCommandSchema, VmCommandSchema, type SnapshotCommand, type VmCommand } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { commandService, openBucket, type CommandServiceDeps, type KV, type RunningCommandService } from "@iaas/runtime";
import { authorizeVmCommand } from "./guard.js";
import { runVmCommand } from "./lifecycle.js";
import { VmQuota } from "./quota.js";
import { authorizeSnapshotCommand, runSnapshotCommand } from "./snapshots.js";
import { SnapshotSweeper } from "./sweep.js";

export interface VmLifecycleDeps extends CommandServiceDeps {
  /** The same policy the gateway enforces (IAAS_POLICY or the default, plus IAAS_ADMINS). */
  policy: Policy;
  config: {
    /** Deadline of one vCenter task (create, clone, delete, reconfigure). */
    taskTimeoutMs: number;
    /** Deadline of a read (vm-get, vm-list) made by the policy checks. */
    lookupTimeoutMs: number;
    concurrency: number;
    /** Time between two rounds of the snapshot retention sweep; 0 turns the sweep off. */
    snapshotSweepMs: number;
    /** Every vCenter id (VCENTERS, `default` first): a quota counts the VMs of all of them. Unset: the default one. */
    vcenters?: readonly string[];
  };
}

/** vm-lifecycle, built: the two command consumers and the sweep; `sweeper` once started. */
export interface VmLifecycleService extends RunningCommandService {
  readonly sweeper: SnapshotSweeper | undefined;
}

/** A reservation outlives the command's vCenter task by this much before it lapses on its own (a crash). */
const QUOTA_HOLD_MARGIN_MS = 5 * 60_000;

/**
 * vm-lifecycle, not started: `start()` opens the quota, approval and sweep buckets, begins
 * consuming `iaas.cmd.vm.*` and `iaas.cmd.snapshot.*` (two durables, so a long clone does not hold
 * up a snapshot), and starts the snapshot retention sweep.
 */
export function buildVmLifecycleService(deps: VmLifecycleDeps): VmLifecycleService {
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
  const snapshotDeps = { nc, policy, lookupTimeoutMs: deps.config.lookupTimeoutMs, taskTimeoutMs: deps.config.taskTimeoutMs, approvals: () => approvals };
  const snapshots = commandService(deps, {
    consumer: "vmSnapshots",
    schema: SnapshotCommandSchema,
    authorize: (cmd: SnapshotCommand) => authorizeSnapshotCommand(snapshotDeps, cmd),
    handle: (cmd, ctx) => runSnapshotCommand(snapshotDeps, cmd, ctx),
  });
  let sweeper: SnapshotSweeper | undefined;
  return {
    get sweeper() {
      return sweeper;
    },
    async start() {
      quota = new VmQuota({ nc, policy, log, kv: await openBucket(nc, "quotas"), holdMs: deps.config.taskTimeoutMs + QUOTA_HOLD_MARGIN_MS, vcenters: deps.config.vcenters });
      approvals = await openBucket(nc, "approvals");
      await inner.start();
      await snapshots.start();
      if (deps.config.snapshotSweepMs > 0) {
        sweeper = new SnapshotSweeper({
          nc,
          jet: deps.jet,
          kv: await openBucket(nc, "snapshotSweep"),
          policy,
          log: log.child({ part: "snapshot-sweep" }),
          intervalMs: deps.config.snapshotSweepMs,
          lookupTimeoutMs: deps.config.lookupTimeoutMs,
          taskTimeoutMs: deps.config.taskTimeoutMs,
          instance: `${hostname()}:${process.pid}`,
          vcenters: deps.config.vcenters,
        });
        sweeper.start();
      }
    },
    async stop() {
      await sweeper?.stop();
      await Promise.all([inner.stop(), snapshots.stop()]);
    },
  };
}
