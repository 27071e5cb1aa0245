import type { z } from "zod";
import { Headers, IaasError, ProxyEndpoints, type ProxyEndpointName, type ProxyRequest, type ProxyResponse } from "@iaas/contracts";
import { addJsonEndpoint, type JsonEndpoint, type Logger, type Metrics, type NatsConnection, type Service } from "@iaas/runtime";
import { Counter, Gauge, Histogram } from "@iaas/runtime";
import type { Vcenter } from "./vcenter.js";
import { cloneVm, createVm, destroyVm, reconfigureVm, relocateVm } from "./provision.js";
import { readEvents } from "./events.js";
import { createSnapshot, listSnapshots, removeSnapshot, revertSnapshot, snapshotsMade } from "./snapshots.js";

export interface ProxyDeps {
  nc: NatsConnection;
  /** The vCenters this proxy serves, by id; requests without `vcenter` go to "default". */
  vcenters: Map<string, Vcenter>;
  log: Logger;
  metrics: Metrics;
  config: { taskTimeoutMs: number };
}

export const PROXY_DESCRIPTION = "The one door to vCenter: inventory and operations over NATS request/reply";

/** Endpoints that change vCenter: a repeat of one still in flight joins it. */
const CHANGING = new Set<ProxyEndpointName>(["vmPower", "vmCreate", "vmClone", "vmDestroy", "vmReconfigure", "vmRelocate", "vmSetOwner", "snapshotCreate", "snapshotRevert", "snapshotRemove", "vmSetLease"]);

/**
 * vcenter-proxy, not started: `start(micro)` adds its endpoints to the micro service its process
 * registered; the endpoints end when that service is stopped, by whoever registered it.
 */
export function buildProxy(deps: ProxyDeps) {
  const { nc, log, metrics } = deps;
  const calls = new Counter({ name: "iaas_vcenter_requests_total", help: "Proxy requests by endpoint and outcome (ok or error code).", labelNames: ["endpoint", "outcome"] as const, registers: [metrics.registry] });
  const seconds = new Histogram({ name: "iaas_vcenter_request_duration_seconds", help: "Proxy request handling time, vCenter calls included.", labelNames: ["endpoint"] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120], registers: [metrics.registry] });

  // The live inventory index of each vCenter, read at scrape time: whether look-ups by name are
  // answered from it (1) or by asking vCenter (0), how many VMs it holds, how often it was rebuilt.
  const indexed = [...deps.vcenters.values()].flatMap((vc) => (vc.index ? [{ id: vc.id, index: vc.index }] : []));
  if (indexed.length) {
    new Gauge({
      name: "iaas_vcenter_index_live",
      help: "1 while look-ups by name are answered from the live inventory index, 0 while they ask vCenter (starting, feed lost); a renewed session's rebuild answers from the previous copy meanwhile.",
      labelNames: ["vcenter"] as const,
      registers: [metrics.registry],
      collect() {
        for (const vc of indexed) this.set({ vcenter: vc.id }, vc.index.live ? 1 : 0);
      },
    });
    new Gauge({
      name: "iaas_vcenter_index_vms",
      help: "VMs and templates in the live inventory index.",
      labelNames: ["vcenter"] as const,
      registers: [metrics.registry],
      collect() {
        for (const vc of indexed) this.set({ vcenter: vc.id }, vc.index.size);
      },
    });
    // Counts kept by the index itself, copied at scrape time: they only grow, so they are counters.
    mirroredCounter(metrics, "iaas_vcenter_index_builds_total", "Times the live inventory index was built from a full answer (1 after start; more after a lost feed or a renewed session).", () => indexed.map((vc) => [vc.id, vc.index.stats.builds]));
    mirroredCounter(metrics, "iaas_vcenter_index_failures_total", "Times the live inventory index lost its feed from vCenter (each one is followed by a rebuild).", () => indexed.map((vc) => [vc.id, vc.index.stats.failures]));
  }

  // The SOAP session of each vCenter: logins (the first and every re-login attempt), re-logins that
  // worked after vCenter forgot the session, requests sent and faults received, from the client's
  // own counts; and whether vCenter answers at all, asked at scrape time as readiness asks it.
  const clients = [...deps.vcenters.values()];
  mirroredCounter(metrics, "iaas_vcenter_logins_total", "Login requests sent to vCenter: the first login and every re-login attempt, successful or not.", () => clients.map((vc) => [vc.id, vc.client.stats.logins]));
  mirroredCounter(metrics, "iaas_vcenter_relogins_total", "Re-logins that succeeded after vCenter forgot the session.", () => clients.map((vc) => [vc.id, vc.client.stats.relogins]));
  mirroredCounter(metrics, "iaas_vcenter_soap_calls_total", "SOAP requests sent to vCenter (logins and keep-alives included).", () => clients.map((vc) => [vc.id, vc.client.stats.calls]));
  mirroredCounter(metrics, "iaas_vcenter_soap_faults_total", "vSphere faults received from vCenter (SOAP faults, task errors, NotAuthenticated).", () => clients.map((vc) => [vc.id, vc.client.stats.faults]));
  new Gauge({
    name: "iaas_vcenter_up",
    help: "1 when vCenter answered CurrentTime on the proxy's session at scrape time (within 3 s), 0 when it did not.",
    labelNames: ["vcenter"] as const,
    registers: [metrics.registry],
    async collect() {
      await Promise.all(
        clients.map(async (vc) => {
          const up = await vc.client.currentTime({ timeoutMs: 3_000 }).then(
            () => 1,
            () => 0,
          );
          this.set({ vcenter: vc.id }, up);
        }),
      );
    },
  });

  /**
   * Operations in flight, by endpoint, request id and request. A command service that died and
   * had its command redelivered asks again while the first call may still be running here (a clone
   * takes minutes on a real vCenter); the second request waits for the first one's answer instead of
   * starting the same task again. Once it is over, the operations' own checks (an existing VM of
   * that request, a VM already in the state asked for) keep a later repeat harmless.
   */
  const inFlight = new Map<string, Promise<unknown>>();
  const joined = new Counter({ name: "iaas_vcenter_requests_joined_total", help: "Requests that joined the same request already in flight (a redelivered command) instead of starting it again.", registers: [metrics.registry] });
  function joinable<T>(key: string, start: () => Promise<T>): Promise<T> {
    const pending = inFlight.get(key) as Promise<T> | undefined;
    if (pending) {
      joined.inc();
      return pending;
    }
    const p = start().finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  }

  const pick = (id: string | undefined): Vcenter => {
    const vc = deps.vcenters.get(id ?? "default");
    if (!vc) throw new IaasError("IAAS_BAD_REQUEST", `unknown vCenter "${id}"; this proxy serves: ${[...deps.vcenters.keys()].join(", ")}`);
    return vc;
  };

  /** Wraps a handler with the proxy's metrics. */
  function measured<Req, Res>(endpoint: string, fn: (req: Req) => Promise<Res>): (req: Req) => Promise<Res> {
    return async (req) => {
      const end = seconds.startTimer({ endpoint });
      try {
        const out = await fn(req);
        calls.inc({ endpoint, outcome: "ok" });
        return out;
      } catch (err) {
        calls.inc({ endpoint, outcome: err instanceof IaasError ? err.code : "IAAS_INTERNAL" });
        throw err;
      } finally {
        end();
      }
    };
  }

  return {
    async start(svc: Service): Promise<Service> {
      const t = deps.config.taskTimeoutMs;
      const E = ProxyEndpoints;
      // Requests arrive parsed by addJsonEndpoint against the endpoint's schema; answers are parsed on the way out.
      const add = <K extends ProxyEndpointName>(key: K, fn: (vc: Vcenter, req: ProxyRequest<K>) => Promise<ProxyResponse<K>>) => {
        // TypeScript cannot correlate E[K] with ProxyRequest<K> (microsoft/TypeScript#30581); the
        // values are still parsed against E[key]'s own schemas at run time.
        const ep = E[key] as unknown as JsonEndpoint<z.ZodType<ProxyRequest<K>>, z.ZodType<ProxyResponse<K>>>;
        const run = measured(ep.name, (req: ProxyRequest<K>) => fn(pick(req.vcenter), req));
        const changes = CHANGING.has(key);
        addJsonEndpoint(
          svc,
          ep,
          (req: ProxyRequest<K>, msg) => {
            const requestId = msg.headers?.get(Headers.requestId);
            return changes && requestId ? joinable(`${ep.name}\n${requestId}\n${JSON.stringify(req)}`, () => run(req)) : run(req);
          },
          log,
        );
      };
      add("vmGet", async (vc, req) => ({ vm: await vc.getVm(req.vm) }));
      add("vmInfo", async (vc, req) => ({ vm: await vc.infoOf(req.vm) }));
      add("vmList", (vc, req) => vc.list(req));
      add("vmUsage", (vc, req) => vc.usage(req));
      add("vmSetOwner", (vc, req) => vc.setOwner(req.vm, req));
      add("vmSetLease", (vc, req) => vc.setLease(req.vm, req.expires));
      add("vmLeases", (vc, req) => vc.leases(req));
      add("templateList", async (vc) => ({ templates: await vc.templates() }));
      add("datastoreList", async (vc) => ({ datastores: await vc.datastores() }));
      add("datastoreVms", async (vc, req) => ({ vms: await vc.datastoreVms(req.datastore) }));
      add("alarmAcknowledge", (vc, req) => vc.acknowledgeAlarm(req.alarm, req.entity));
      add("vmPower", async (vc, req) => ({ vm: await vc.power(req.vm, req.action, req.timeoutMs ?? t) }));
      add("vmCreate", (vc, req) => createVm(vc, req, t));
      add("vmClone", (vc, req) => cloneVm(vc, req, t));
      add("vmDestroy", (vc, req) => destroyVm(vc, req, t));
      add("vmReconfigure", (vc, req) => reconfigureVm(vc, req, t));
      add("vmRelocate", (vc, req) => relocateVm(vc, req, t));
      add("eventsRead", (vc, req) => readEvents(vc, req));
      add("snapshotList", (vc, req) => listSnapshots(vc, req));
      add("snapshotCreate", (vc, req) => createSnapshot(vc, req, t));
      add("snapshotRevert", (vc, req) => revertSnapshot(vc, req, t));
      add("snapshotRemove", (vc, req) => removeSnapshot(vc, req, t));
      add("snapshotsMade", (vc, req) => snapshotsMade(vc, req));
      return svc;
    },
    /** Nothing of its own to stop: its endpoints go with the micro service it was started on. */
    async stop(): Promise<void> {},
  };
}

/** A counter by vCenter whose values are counts kept elsewhere (only growing), read at each scrape. */
function mirroredCounter(metrics: Metrics, name: string, help: string, read: () => [vcenter: string, count: number][]): void {
  new Counter({
    name,
    help,
    labelNames: ["vcenter"] as const,
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const [vcenter, count] of read()) this.inc({ vcenter }, count);
    },
  });
}
