import { LeaseCommandSchema } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import { commandService, openBucket, type CommandServiceDeps, type KV, type RunningCommandService } from "@iaas/runtime";
import { authorizeLeaseCommand, runLeaseCommand } from "./commands.js";
import { LeaseKeeper } from "./keeper.js";
import { keeperMetrics } from "./metrics.js";

export interface LeaseKeeperDeps extends CommandServiceDeps {
  /** The same policy the gateway enforces (IAAS_POLICY or the default, plus IAAS_ADMINS). */
  policy: Policy;
  /** The `iaas_leases` bucket: each lease step, claimed and done. */
  leases: KV;
  config: {
    concurrency: number;
    /** Deadline of one proxy call (a look-up, a power-off, a delete). */
    proxyTimeoutMs: number;
    /** Time between two rounds over the leased VMs. */
    scanMs: number;
    /** A step claimed longer ago than this, and not done, is taken over (its keeper died). */
    claimStaleMs: number;
    /** Every vCenter whose leases the keeper keeps (VCENTERS, `default` first); the default one when unset. */
    vcenters?: readonly string[];
  };
  now?: () => number;
}

/**
 * lease-keeper, not started: `start()` consumes `iaas.cmd.lease.*` (extend, set) and starts the
 * keeper's rounds; `stop()` lets a round and the commands in flight finish.
 */
export function buildLeaseKeeper(deps: LeaseKeeperDeps): RunningCommandService {
  const { nc, policy } = deps;
  let approvals: KV | undefined;
  const d = { nc, policy, proxyTimeoutMs: deps.config.proxyTimeoutMs, approvals: () => approvals };
  const commands = commandService(deps, {
    consumer: "leaseKeeper",
    schema: LeaseCommandSchema,
    authorize: (cmd) => authorizeLeaseCommand(d, cmd),
    handle: (cmd, ctx) => runLeaseCommand(d, cmd, ctx),
  });
  const keeper = new LeaseKeeper({
    nc,
    js: deps.jet.js,
    kv: deps.leases,
    policy,
    log: deps.log.child({ part: "keeper" }),
    metrics: keeperMetrics(deps.metrics),
    config: { scanMs: deps.config.scanMs, claimStaleMs: deps.config.claimStaleMs, proxyTimeoutMs: deps.config.proxyTimeoutMs, vcenters: deps.config.vcenters },
    ...(deps.now ? { now: deps.now } : {}),
  });
  return {
    async start() {
      approvals = await openBucket(nc, "approvals");
      await commands.start();
      keeper.start();
    },
    async stop() {
      await keeper.stop();
      await commands.stop();
    },
  };
}
