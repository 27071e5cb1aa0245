import { ServiceNames } from "@iaas/contracts";
import { PolicyError, loadPolicy, type Policy } from "@iaas/policy";
import { ConfigError, ensureConsumer, ensureStreams, openBucket, runService } from "@iaas/runtime";
import { VERSION, buildRemediation } from "./build.js";
import { RemediationEnvSchema, remediationConfigFromEnv } from "./config.js";

await runService({
  name: ServiceNames.remediation,
  version: VERSION,
  description: "Acts on vCenter alarms from VSPHERE_EVENTS: vertical scaling, datastore evacuation",
  env: RemediationEnvSchema,
  // IAAS_POLICY and IAAS_ADMINS; a policy that does not load stops the service with a line naming the file and field.
  prepare: (_env, log) => {
    const policy = policyFromEnv();
    log.info({ policy: policy.source, dryRun: policy.remediation.dryRun, enabled: policy.remediation.enabled }, "policy loaded");
    return policy;
  },
  async start({ env, prepared: policy, log, nc, jet, metrics }) {
    await ensureStreams(jet.jsm, ["events", "audit", "results", "notices"], log);
    await ensureConsumer(jet.jsm, "remediation");
    await ensureConsumer(jet.jsm, "remediationResults");
    const state = await openBucket(nc, "remediation");
    const service = buildRemediation({ nc, jet, state, policy, log, metrics, config: remediationConfigFromEnv(env) });
    await service.start();
    return service;
  },
});

/** The policy (IAAS_POLICY, IAAS_ADMINS), or a one-line configuration error naming the file and the field. */
function policyFromEnv(): Policy {
  try {
    return loadPolicy({ env: process.env });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(["IAAS_POLICY"], err.message);
    throw err;
  }
}
