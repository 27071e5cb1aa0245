import { ServiceNames } from "@iaas/contracts";
import { PolicyError, loadPolicy } from "@iaas/policy";
import { ConfigError, runService, type RunningService } from "@iaas/runtime";
import { buildGateway } from "./build.js";
import { GatewayEnvSchema, checkApproverGroups } from "./config.js";
import { ensureGatewayResources } from "./resources.js";

await runService({
  name: ServiceNames.gateway,
  description: "Slack gateway: /iaas commands in, results out",
  env: GatewayEnvSchema,
  // A policy that does not load stops the gateway here, with one line naming the file and field.
  prepare(env, log) {
    try {
      const policy = loadPolicy({ env: { IAAS_POLICY: env.IAAS_POLICY, IAAS_ADMINS: env.IAAS_ADMINS.join(",") } });
      log.info({ policy: policy.source }, "policy loaded");
      checkApproverGroups(policy, env);
      return policy;
    } catch (err) {
      if (err instanceof PolicyError) throw new ConfigError(["IAAS_POLICY"], err.message);
      throw err;
    }
  },
  async start({ env: config, prepared: policy, log, nc, metrics }): Promise<RunningService> {
    await ensureGatewayResources(nc, log);
    const gateway = buildGateway({ nc, config, log, metrics, policy });
    const { port } = await gateway.start();
    return {
      stop: () => gateway.stop(),
      // Over Socket Mode Slack reaches the gateway only through its own connection: none, not ready.
      checks: config.SLACK_APP_TOKEN !== undefined ? { slack: () => gateway.slackReady() } : {},
      ready: { slackPort: port, socketMode: config.SLACK_APP_TOKEN !== undefined },
    };
  },
});
