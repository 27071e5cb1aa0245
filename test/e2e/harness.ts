/**
 * The whole system in one test process, on real parts: a private nats-server, the vCenter
 * simulator, the Slack stand-in, and each service built by its own factory with real
 * dependencies (as main.ts wires it). Only Slack's side is a stand-in.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { addMicroService, createLogger, createMetrics, ensureConsumer, ensureStreams, jetstreamFor, openBucket, requestJson, type Metrics } from "@iaas/runtime";
import { VimClient } from "@iaas/vsphere";
import { SlackStandIn, postSigned, slashCommandBody, startNatsServer, startVcsim, type NatsServer, type SlackStandInOptions, type Vcsim, type VcsimOptions } from "@iaas/testkit";
import { buildGateway, ensureGatewayResources, GatewayEnvSchema } from "@iaas/gateway";
import { buildPowerService } from "@iaas/power";
import { buildVmLifecycleService, type VmLifecycleService } from "@iaas/vm-lifecycle";
import { buildLeaseKeeper } from "@iaas/lease-keeper";
import { loadPolicy, parsePolicy, type Policy } from "@iaas/policy";
import { buildProxy, Vcenter, type ProxyDeps } from "@iaas/vcenter-proxy";
// Not a dependency of the root package: imported by path.
import { buildBridge, VERSION, type Bridge, type BridgeDeps } from "../../services/veba-bridge/src/mod.js";
import { ProxyEndpoints, ServiceNames } from "@iaas/contracts";

/** The simulator's generated VMs (the demo template aside): none has an owner. */
export const DEMO_VMS = ["DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"];

/** A service started as its main starts it; `stop` also deregisters its micro service. */
export interface Started {
  stop(): Promise<void>;
}

/** vcenter-proxy on a micro service registered for it, as runService gives main one. */
export async function startProxy(deps: ProxyDeps): Promise<Started> {
  const proxy = buildProxy(deps);
  const micro = await addMicroService(deps.nc, ServiceNames.vcenterProxy, "0.1.0", "vcenter-proxy (test)");
  await proxy.start(micro);
  return {
    async stop() {
      await proxy.stop();
      await micro.stop();
    },
  };
}

/** The VEBA bridge on a micro service registered for it, as runService gives main one. */
export async function startBridge(deps: BridgeDeps): Promise<Bridge> {
  const bridge = buildBridge(deps);
  const micro = await addMicroService(deps.nc, ServiceNames.vebaBridge, VERSION, "veba-bridge (test)");
  await bridge.start(micro);
  return {
    get port() {
      return bridge.port;
    },
    get listening() {
      return bridge.listening;
    },
    start: () => Promise.reject(new Error("already started")),
    async stop() {
      await bridge.stop();
      await micro.stop();
    },
  };
}

export const SIGNING_SECRET = "e2e-signing-secret-not-a-real-one";

export interface System {
  nats: NatsServer;
  sim: Vcsim;
  slack: SlackStandIn;
  /** The gateway's Slack endpoint; empty in Socket Mode (no HTTP port). */
  gatewayUrl: string;
  /** Every gateway replica's Slack endpoint (`gatewayUrl` first; more with `gatewayReplicas`). */
  gatewayUrls: string[];
  /** A SOAP session of the test's own, to read back what the system did. */
  observer: VimClient;
  /** The second simulator and a session on it (the `secondVcenter` option). */
  simB: Vcsim | undefined;
  observerB: VimClient | undefined;
  nc: NatsConnection;
  policy: Policy;
  /** Each service's metrics registry, as its /metrics endpoint serves it. */
  metrics: Record<"vcenter-proxy" | "power" | "vm-lifecycle" | "gateway" | "lease-keeper", Metrics>;
  /** vm-lifecycle as started (its snapshot sweeper, when `snapshotSweepMs` is set). */
  lifecycle: VmLifecycleService;
  /**
   * Gives VMs an owner (and team) through vcenter-proxy, as `/iaas owner` would: the demo VMs have
   * none, and unowned VMs are admin-only.
   */
  adopt(vms: string | string[], owner: string, team?: string): Promise<void>;
  /** A signed slash command to the first gateway, or to replica `via` (an index into `gatewayUrls`). */
  slash(text: string, fields?: { user_id?: string; channel_id?: string; trigger_id?: string; headers?: Record<string, string>; via?: number }): Promise<{ status: number; body: string; json: unknown; responseUrl: string }>;
  stop(): Promise<void>;
}

export interface SystemOptions {
  vcsim?: VcsimOptions;
  /** IAAS_ADMINS (default `UADMIN1`). */
  admins?: string;
  /** Policy YAML shared by every service, as IAAS_POLICY would give it; the built-in default when unset. */
  policyYaml?: string;
  /** The gateway's clock (confirmation expiry, rate-limit windows); the real one when unset. */
  now?: () => number;
  /** More gateway environment (SLACK_BOT_TOKEN, SLACK_USERGROUPS_REFRESH_S, …). */
  gatewayEnv?: Record<string, string>;
  /** Sets up the Slack stand-in before the gateway starts (user groups). */
  slack?: (slack: SlackStandIn) => void;
  /** Gateway replicas on the same NATS (default 1), as a deployment with several would run them. */
  gatewayReplicas?: number;
  /** How the Slack stand-in starts (`appToken` turns on its Socket Mode side; give the gateway SLACK_APP_TOKEN too). */
  slackOptions?: SlackStandInOptions;
  /** The proxy's HTTP client towards the simulator (to make chosen SOAP calls fail); Node's fetch when unset. */
  vcenterFetch?: typeof fetch;
  /** vm-lifecycle's snapshot retention sweep, every this many ms (default 0: off, so other tests' VMs are left alone). */
  snapshotSweepMs?: number;
  /** The proxy's live inventory index (default on, as its main runs it). */
  liveIndex?: boolean;
  /** lease-keeper's round interval (LEASE_SCAN_MS); 500 ms when unset. */
  leaseScanMs?: number;
  /**
   * A second simulator, served by the proxy as this VCENTERS id (the same generated inventory as
   * the first: the same VM names); the gateway, vm-lifecycle and lease-keeper get VCENTERS set to it.
   */
  secondVcenter?: string;
}

export async function startSystem(opts: SystemOptions = {}): Promise<System> {
  const log = createLogger("e2e", process.env.E2E_LOG_LEVEL ?? "silent");
  const admins = opts.admins ?? "UADMIN1";
  // One policy for every service, as one IAAS_POLICY file and IAAS_ADMINS would give them.
  const policy: Policy = opts.policyYaml ? parsePolicy(opts.policyYaml, { source: "e2e policy", env: { IAAS_ADMINS: admins } }) : loadPolicy({ env: { IAAS_ADMINS: admins } });
  const [nats, sim, slack, simB] = await Promise.all([startNatsServer(), startVcsim(opts.vcsim), SlackStandIn.start(opts.slackOptions), opts.secondVcenter ? startVcsim(opts.vcsim) : undefined]);
  const stops: (() => Promise<unknown>)[] = [];

  const connectAs = (name: string) => connect({ servers: nats.url, name });

  // vcenter-proxy
  const proxyNc = await connectAs("vcenter-proxy");
  const client = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, ...(opts.vcenterFetch ? { fetch: opts.vcenterFetch } : {}) });
  const metrics = { "vcenter-proxy": createMetrics("vcenter-proxy"), power: createMetrics("power"), "vm-lifecycle": createMetrics("vm-lifecycle"), gateway: createMetrics("gateway"), "lease-keeper": createMetrics("lease-keeper") };
  // As the proxy's main runs it: with the live inventory index.
  const vcenter = new Vcenter("default", client, log, { liveIndex: opts.liveIndex ?? true });
  await vcenter.index?.start();
  const vcenters = new Map([["default", vcenter]]);
  const clientB = simB ? await VimClient.connect({ url: simB.url, username: simB.username, password: simB.password }) : undefined;
  const vcenterB = clientB && opts.secondVcenter ? new Vcenter(opts.secondVcenter, clientB, log, { liveIndex: opts.liveIndex ?? true }) : undefined;
  if (vcenterB) {
    await vcenterB.index?.start();
    vcenters.set(opts.secondVcenter!, vcenterB);
  }
  const proxy = await startProxy({ nc: proxyNc, vcenters, log, metrics: metrics["vcenter-proxy"], config: { taskTimeoutMs: 30_000 } });
  stops.push(async () => {
    await proxy.stop();
    await vcenter.close();
    await vcenterB?.close();
    await proxyNc.close();
    await client.logout().catch(() => undefined);
    await clientB?.logout().catch(() => undefined);
  });

  // power
  const powerNc = await connectAs("power");
  const powerJet = await jetstreamFor(powerNc);
  await ensureStreams(powerJet.jsm, ["commands", "results", "audit", "deadLetters"], log);
  await ensureConsumer(powerJet.jsm, "power");
  const power = buildPowerService({ nc: powerNc, jet: powerJet, state: await openBucket(powerNc, "commandState"), policy, log, metrics: metrics.power, config: { proxyTimeoutMs: 30_000, concurrency: 4 } });
  await power.start();
  stops.push(async () => {
    await power.stop();
    await powerNc.close();
  });

  // vm-lifecycle
  const vmNc = await connectAs("vm-lifecycle");
  const vmJet = await jetstreamFor(vmNc);
  await ensureConsumer(vmJet.jsm, "vmLifecycle");
  await ensureConsumer(vmJet.jsm, "vmSnapshots");
  const lifecycle = buildVmLifecycleService({
    nc: vmNc,
    jet: vmJet,
    state: await openBucket(vmNc, "commandState"),
    policy,
    log,
    metrics: metrics["vm-lifecycle"],
    config: { taskTimeoutMs: 30_000, lookupTimeoutMs: 10_000, concurrency: 4, snapshotSweepMs: opts.snapshotSweepMs ?? 0, ...(opts.secondVcenter ? { vcenters: ["default", opts.secondVcenter] } : {}) },
  });
  await lifecycle.start();
  stops.push(async () => {
    await lifecycle.stop();
    await vmNc.close();
  });

  // lease-keeper
  const leaseNc = await connectAs("lease-keeper");
  const leaseJet = await jetstreamFor(leaseNc);
  await ensureConsumer(leaseJet.jsm, "leaseKeeper");
  const keeper = buildLeaseKeeper({
    nc: leaseNc,
    jet: leaseJet,
    state: await openBucket(leaseNc, "commandState"),
    leases: await openBucket(leaseNc, "leases"),
    policy,
    log,
    metrics: metrics["lease-keeper"],
    config: { concurrency: 4, proxyTimeoutMs: 30_000, scanMs: opts.leaseScanMs ?? 500, claimStaleMs: 60_000, ...(opts.secondVcenter ? { vcenters: ["default", opts.secondVcenter] } : {}) },
  });
  await keeper.start();
  stops.push(async () => {
    await keeper.stop();
    await leaseNc.close();
  });

  // gateway
  opts.slack?.(slack);
  const gwNc = await connectAs("gateway");
  await ensureGatewayResources(gwNc, log);
  const config = GatewayEnvSchema.parse({ SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.apiUrl, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", IAAS_ADMINS: admins, ...(opts.secondVcenter ? { VCENTERS: opts.secondVcenter } : {}), ...opts.gatewayEnv });
  const gateway = buildGateway({ nc: gwNc, config, log, metrics: metrics.gateway, policy, ...(opts.now ? { now: opts.now } : {}) });
  const { port } = await gateway.start();
  stops.push(async () => {
    await gateway.stop();
    await gwNc.close();
  });
  const replicaUrls: string[] = [];
  for (let i = 1; i < (opts.gatewayReplicas ?? 1); i++) {
    const replicaNc = await connectAs("gateway");
    const replica = buildGateway({ nc: replicaNc, config, log, metrics: createMetrics("gateway"), policy, ...(opts.now ? { now: opts.now } : {}) });
    const started = await replica.start();
    replicaUrls.push(`http://127.0.0.1:${started.port}/slack/events`);
    stops.push(async () => {
      await replica.stop();
      await replicaNc.close();
    });
  }

  const observer = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password });
  const observerB = simB ? await VimClient.connect({ url: simB.url, username: simB.username, password: simB.password }) : undefined;
  const nc = await connectAs("e2e-observer");
  const gatewayUrl = port === undefined ? "" : `http://127.0.0.1:${port}/slack/events`;
  let n = 0;

  return {
    metrics,
    lifecycle,
    nats,
    sim,
    slack,
    gatewayUrl,
    gatewayUrls: [gatewayUrl, ...replicaUrls],
    observer,
    simB,
    observerB,
    nc,
    policy,
    async adopt(vms, owner, team) {
      for (const vm of typeof vms === "string" ? [vms] : vms) {
        await requestJson(nc, ProxyEndpoints.vmSetOwner, { vm, owner, ...(team ? { team } : {}) }, { timeoutMs: 10_000 });
      }
    },
    async slash(text, fields = {}) {
      n += 1;
      const responseUrl = slack.responseUrl(`r${n}`);
      const body = slashCommandBody({ text, response_url: responseUrl, ...(fields.user_id ? { user_id: fields.user_id } : {}), ...(fields.channel_id ? { channel_id: fields.channel_id } : {}), ...(fields.trigger_id ? { trigger_id: fields.trigger_id } : {}) });
      const r = await postSigned(fields.via ? replicaUrls[fields.via - 1]! : gatewayUrl, body, { secret: SIGNING_SECRET, ...(fields.headers ? { headers: fields.headers } : {}) });
      return { status: r.status, body: r.body, json: r.json, responseUrl };
    },
    async stop() {
      for (const s of stops.reverse()) await s().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await observer.logout().catch(() => undefined);
      await observerB?.logout().catch(() => undefined);
      await Promise.all([nats.dispose(), sim.stop(), slack.close(), simB?.stop()]);
    },
  };
}
