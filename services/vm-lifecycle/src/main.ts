import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { loadPolicy } from "@iaas/policy";
import { BaseEnvSchema, PortSchema, VcentersEnvSchema, natsAuthRefinement, runCommandService } from "@iaas/runtime";
import { buildVmLifecycleService } from "./build.js";

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9103),
  VM_LIFECYCLE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** One vCenter task (a clone of a big VM takes minutes); under the consumer's 15-minute ack wait, kept alive meanwhile. */
  VM_LIFECYCLE_TASK_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  VM_LIFECYCLE_LOOKUP_TIMEOUT_MS: z.coerce.number().int().min(500).max(120_000).default(15_000),
  /** Time between two rounds of the snapshot retention sweep (every replica sweeps; claims in NATS keep it to one delete); 0: off. */
  VM_LIFECYCLE_SNAPSHOT_SWEEP_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  IAAS_POLICY: z.string().optional(),
  IAAS_ADMINS: z.string().optional(),
  /** vcenter-proxy's VCENTERS: a quota counts the VMs of every vCenter. */
  VCENTERS: VcentersEnvSchema,
}).superRefine(natsAuthRefinement);

await runCommandService({
  name: ServiceNames.vmLifecycle,
  description: "Creates, clones, deploys, resizes and deletes VMs; takes, reverts and deletes snapshots",
  env: EnvSchema,
  consumer: "vmLifecycle",
  moreConsumers: ["vmSnapshots"],
  // A policy that does not load stops the service here, with a line naming the field.
  prepare: (_env, log) => {
    const policy = loadPolicy({ env: process.env });
    log.info({ policy: policy.source }, "policy loaded");
    return policy;
  },
  build: ({ env, prepared: policy, log, nc, jet, metrics, state }) =>
    buildVmLifecycleService({
      nc,
      jet,
      state,
      policy,
      log,
      metrics,
      config: {
        taskTimeoutMs: env.VM_LIFECYCLE_TASK_TIMEOUT_MS,
        lookupTimeoutMs: env.VM_LIFECYCLE_LOOKUP_TIMEOUT_MS,
        concurrency: env.VM_LIFECYCLE_CONCURRENCY,
        snapshotSweepMs: env.VM_LIFECYCLE_SNAPSHOT_SWEEP_MS,
        vcenters: env.VCENTERS,
      },
    }),
});
