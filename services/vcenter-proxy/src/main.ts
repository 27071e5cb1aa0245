import { z } from "zod";
import { ServiceNames } from "@iaas/contracts";
import { VimClient, isVimFault, type VimClientOptions } from "@iaas/vsphere";
import { BaseEnvSchema, ConfigError, PortSchema, VcentersEnvSchema, loadConfig, natsAuthRefinement, runService, type Logger } from "@iaas/runtime";
import { PROXY_DESCRIPTION, buildProxy } from "./build.js";
import { Vcenter } from "./vcenter.js";

/** true/1 or false/0; unset or empty is `dflt`. */
const flag = (dflt: boolean) => z.enum(["true", "false", "1", "0", ""]).default("").transform((v) => (v === "" ? dflt : v === "true" || v === "1"));
const bool = flag(false);

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
  /**
   * Keep a live index of VM names and paths (a property-collector feed; one long-poll per vCenter,
   * which also keeps the session alive) instead of listing every VM per look-up.
   */
  VCENTER_LIVE_INDEX: flag(true),
  /**
   * More vCenters beside the default one, by id (`lab,dr`): each is read from VCENTER_<ID>_URL,
   * _USERNAME, _PASSWORD and _INSECURE, and requests name it in their `vcenter` field.
   */
  VCENTERS: VcentersEnvSchema,
}).superRefine(natsAuthRefinement);

/** The variables of one more vCenter, named after its id (`lab` → VCENTER_LAB_URL, ...). */
function extraVcenterSchema(id: string) {
  const p = `VCENTER_${id.toUpperCase().replace(/-/g, "_")}_`;
  return z
    .object({
      [`${p}URL`]: z.url().refine((u) => /^https?:/.test(u), "must be an http(s) URL"),
      [`${p}USERNAME`]: z.string().min(1),
      [`${p}PASSWORD`]: z.string().min(1),
      [`${p}INSECURE`]: bool,
    })
    .transform((e) => ({ url: e[`${p}URL`] as string, username: e[`${p}USERNAME`] as string, password: e[`${p}PASSWORD`] as string, insecure: e[`${p}INSECURE`] as boolean }));
}

await runService({
  name: ServiceNames.vcenterProxy,
  description: PROXY_DESCRIPTION,
  env: EnvSchema,
  // Every vCenter is logged in to before the proxy takes a request: refused credentials stop it here.
  async prepare(env, log) {
    const targets = [
      { id: "default", url: env.VCENTER_URL, username: env.VCENTER_USERNAME, password: env.VCENTER_PASSWORD, insecure: env.VCENTER_INSECURE },
      // The ones beside the default one (VCENTER_URL's, first in the list).
      ...env.VCENTERS.slice(1).map((id) => ({ id, ...loadConfig(extraVcenterSchema(id)) })),
    ];
    const vcenters = new Map<string, Vcenter>();
    for (const t of targets) {
      const vlog = log.child({ vcenter: t.id });
      const client = await connectVcenter(
        {
          url: t.url,
          username: t.username,
          password: t.password,
          // The client's own node:https agent skips verification for an insecure vCenter.
          insecure: t.insecure,
          timeoutMs: env.VCENTER_TIMEOUT_MS,
          concurrency: env.VCENTER_CONCURRENCY,
          logger: vlog,
        },
        vlog,
        t.id,
      );
      vlog.info({ host: new URL(t.url).host, version: client.serviceContent.about.fullName }, "logged in to vCenter");
      vcenters.set(t.id, new Vcenter(t.id, client, vlog, { liveIndex: env.VCENTER_LIVE_INDEX }));
    }
    return vcenters;
  },
  async start({ env, prepared: vcenters, log, nc, metrics, micro }) {
    const proxy = buildProxy({ nc, vcenters, log, metrics, config: { taskTimeoutMs: env.VCENTER_TASK_TIMEOUT_MS } });
    await proxy.start(micro);
    // Defines the custom attributes iaas.owner and iaas.team if missing and copies version 1's
    // owners (extraConfig) into them, in the background: requests are served meanwhile (a read
    // falls back to the extraConfig owner), and a failure is retried at the next start.
    for (const vc of vcenters.values()) {
      vc.migrateOwners().then(
        (migrated) => log.info({ vcenter: vc.id, migrated }, "owners from extraConfig iaas.owner copied into the custom attribute iaas.owner"),
        (err: unknown) => log.warn({ err, vcenter: vc.id }, "owner migration to custom attributes failed; it runs again at the next start"),
      );
    }
    return {
      stop: () => proxy.stop(),
      // vCenter sessions end once NATS is drained, so no request in flight loses its session.
      async close() {
        await Promise.all([...vcenters.values()].map((v) => v.close()));
        await Promise.all([...vcenters.values()].map((v) => v.client.logout().catch((err: unknown) => log.warn({ err, vcenter: v.id }, "vCenter logout failed"))));
      },
      checks: {
        // Ready when every vCenter answers with a live session.
        vcenter: async () => {
          await Promise.all([...vcenters.values()].map((v) => v.client.currentTime({ timeoutMs: 5000 })));
          return true;
        },
      },
    };
  },
});

/**
 * Logs in to vCenter. Refused credentials stop the proxy with one line naming the variables (no
 * retry loop against vCenter's lockout policy); an unreachable vCenter is waited for with back-off,
 * so the proxy can start before vCenter or ride out its restart at start-up.
 */
async function connectVcenter(opts: VimClientOptions, log: Logger, id: string): Promise<VimClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await VimClient.connect(opts);
    } catch (err) {
      if (isVimFault(err, "InvalidLogin")) {
        const p = id === "default" ? "VCENTER_" : `VCENTER_${id.toUpperCase().replace(/-/g, "_")}_`;
        throw new ConfigError([`${p}USERNAME`, `${p}PASSWORD`], `vCenter${id === "default" ? "" : ` "${id}"`} refused the login (InvalidLogin): check ${p}USERNAME and ${p}PASSWORD`);
      }
      if (!(err as { retryable?: boolean }).retryable) throw err;
      const waitMs = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
      log.warn({ err, attempt, waitMs }, "vCenter not reachable yet; retrying");
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
