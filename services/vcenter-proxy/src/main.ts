import { z } from "zod";
import { Agent } from "undici";
import { ServiceNames } from "@iaas/contracts";
import { VimClient, isVimFault, type VimClientOptions } from "@iaas/vsphere";
import {
  BaseEnvSchema,
  ConfigError,
  PortSchema,
  connectNats,
  createLogger,
  createMetrics,
  fatal,
  isNatsConnected,
  loadConfig,
  natsAuthRefinement,
  onShutdown,
  startHealthServer,
  type Logger,
} from "@iaas/runtime";
import { buildProxy } from "./build.js";
import { Vcenter } from "./vcenter.js";

const bool = z.enum(["true", "false", "1", "0", ""]).default("false").transform((v) => v === "true" || v === "1");

const EnvSchema = BaseEnvSchema.extend({
  HEALTH_PORT: PortSchema.default(9101),
  VCENTER_URL: z.url().refine((u) => /^https?:/.test(u), "must be an http(s) URL, e.g. https://vcenter.example.com/sdk"),
  VCENTER_USERNAME: z.string().min(1),
  VCENTER_PASSWORD: z.string().min(1),
  VCENTER_INSECURE: bool,
  /** Timeout of one SOAP request. */
  VCENTER_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  /** Default deadline for a vCenter task when the caller gives none. */
  VCENTER_TASK_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  /** SOAP requests in flight at once; more wait in a queue. */
  VCENTER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
}).superRefine(natsAuthRefinement);

let log: Logger | undefined;
try {
  const env = loadConfig(EnvSchema);
  log = createLogger(ServiceNames.vcenterProxy, env.LOG_LEVEL);
  const vlog = log.child({ vcenter: "default" });
  const client = await connectVcenter(
    {
      url: env.VCENTER_URL,
      username: env.VCENTER_USERNAME,
      password: env.VCENTER_PASSWORD,
      insecure: env.VCENTER_INSECURE,
      ...(env.VCENTER_INSECURE && env.VCENTER_URL.startsWith("https:") ? { dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) } : {}),
      timeoutMs: env.VCENTER_TIMEOUT_MS,
      concurrency: env.VCENTER_CONCURRENCY,
      logger: vlog,
    },
    vlog,
  );
  log.info({ vcenter: new URL(env.VCENTER_URL).host, version: client.serviceContent.about.fullName }, "logged in to vCenter");
  const nc = await connectNats(env, ServiceNames.vcenterProxy, log);
  const metrics = createMetrics(ServiceNames.vcenterProxy);
  const proxy = buildProxy({ nc, vcenters: new Map([["default", new Vcenter("default", client, vlog)]]), log, metrics, config: { taskTimeoutMs: env.VCENTER_TASK_TIMEOUT_MS } });
  const micro = await proxy.start();
  const health = await startHealthServer({
    host: env.HEALTH_HOST,
    port: env.HEALTH_PORT,
    checks: {
      nats: () => isNatsConnected(nc),
      vcenter: async () => {
        await client.currentTime({ timeoutMs: 5000 });
        return true;
      },
    },
    registry: metrics.registry,
    log,
  });
  log.info({ health: `http://${env.HEALTH_HOST}:${health.port}`, id: micro.info().id }, "vcenter-proxy ready");
  const l = log;
  onShutdown(l, async () => {
    await proxy.stop();
    await nc.drain();
    await client.logout().catch((err: unknown) => l.warn({ err }, "vCenter logout failed"));
    await health.close();
  });
} catch (err) {
  fatal(log, err);
}

/**
 * Logs in to vCenter. Refused credentials stop the proxy with one line naming the variables (no
 * retry loop against vCenter's lockout policy); an unreachable vCenter is waited for with back-off,
 * so the proxy can start before vCenter or ride out its restart at start-up.
 */
async function connectVcenter(opts: VimClientOptions, log: Logger): Promise<VimClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await VimClient.connect(opts);
    } catch (err) {
      if (isVimFault(err, "InvalidLogin")) {
        throw new ConfigError(["VCENTER_USERNAME", "VCENTER_PASSWORD"], "vCenter refused the login (InvalidLogin): check VCENTER_USERNAME and VCENTER_PASSWORD");
      }
      if (!(err as { retryable?: boolean }).retryable) throw err;
      const waitMs = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
      log.warn({ err, attempt, waitMs }, "vCenter not reachable yet; retrying");
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
