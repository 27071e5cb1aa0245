import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { loadPolicy } from "@iaas/policy";
import { BaseEnvSchema, PortSchema, VcentersEnvSchema, natsAuthRefinement, openBucket, runCommandService } from "@iaas/runtime";
import { buildLeaseKeeper } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9106),
  LEASE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** One proxy call: a look-up, the power-off at a lease's end, the delete after the grace. */
  LEASE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
  /** Time between two rounds over the leased VMs (a minute: leases are counted in days). */
  LEASE_SCAN_MS: z.coerce.number().int().min(200).max(3_600_000).default(60_000),
  /** A step claimed and not finished for this long was left by a keeper that died: another takes it over. */
  LEASE_CLAIM_STALE_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
  IAAS_POLICY: z.string().optional(),
  IAAS_ADMINS: z.string().optional(),
  /** vcenter-proxy's VCENTERS: the keeper keeps the leases of every vCenter. */
  VCENTERS: VcentersEnvSchema,
}).superRefine(natsAuthRefinement);

await runCommandService({
  name: ServiceNames.leaseKeeper,
  description: "Extends and sets VM leases; reminds owners, powers off at the end, deletes after the grace",
  env: EnvSchema,
  consumer: "leaseKeeper",
  // A policy that does not load stops the service here, with a line naming the field.
  prepare: (_env, log) => {
    const policy = loadPolicy({ env: process.env });
    log.info({ policy: policy.source, leases: policy.leases.enabled }, "policy loaded");
    return policy;
  },
  build: ({ env, prepared: policy, log, nc, jet, metrics, state }) => {
    let leases: Awaited<ReturnType<typeof openBucket>> | undefined;
    const inner = () =>
      buildLeaseKeeper({
        nc,
        jet,
        state,
        leases: leases!,
        policy,
        log,
        metrics,
        config: { concurrency: env.LEASE_CONCURRENCY, proxyTimeoutMs: env.LEASE_TIMEOUT_MS, scanMs: env.LEASE_SCAN_MS, claimStaleMs: Math.max(env.LEASE_CLAIM_STALE_MS, env.LEASE_TIMEOUT_MS + 5_000), vcenters: env.VCENTERS },
      });
    let service: ReturnType<typeof buildLeaseKeeper> | undefined;
    return {
      async start() {
        leases = await openBucket(nc, "leases");
        service = inner();
        await service.start();
      },
      stop: async () => service?.stop(),
    };
  },
});
