import type { z } from "zod";
import { IaasError, ProxyEndpoints, ServiceNames, type ProxyEndpointName, type ProxyRequest, type ProxyResponse } from "@iaas/contracts";
import { addJsonEndpoint, addMicroService, type JsonEndpoint, type Logger, type Metrics, type NatsConnection, type Service } from "@iaas/runtime";
import { Counter, Histogram } from "@iaas/runtime";
import type { Vcenter } from "./vcenter.js";
import { cloneVm, createVm, destroyVm, reconfigureVm, relocateVm } from "./provision.js";
import { readEvents } from "./events.js";

export interface ProxyDeps {
  nc: NatsConnection;
  /** The vCenters this proxy serves, by id; requests without `vcenter` go to "default". */
  vcenters: Map<string, Vcenter>;
  log: Logger;
  metrics: Metrics;
  config: { taskTimeoutMs: number };
}

/** vcenter-proxy, not started: `start()` registers the micro service and its endpoints. */
export function buildProxy(deps: ProxyDeps) {
  const { nc, log, metrics } = deps;
  const calls = new Counter({ name: "iaas_vcenter_requests_total", help: "Proxy requests by endpoint and outcome (ok or error code).", labelNames: ["endpoint", "outcome"] as const, registers: [metrics.registry] });
  const seconds = new Histogram({ name: "iaas_vcenter_request_duration_seconds", help: "Proxy request handling time, vCenter calls included.", labelNames: ["endpoint"] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120], registers: [metrics.registry] });
  let service: Service | undefined;

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
    async start(): Promise<Service> {
      service = await addMicroService(nc, ServiceNames.vcenterProxy, "0.1.0", "The one door to vCenter: inventory and operations over NATS request/reply");
      const t = deps.config.taskTimeoutMs;
      const E = ProxyEndpoints;
      const svc = service;
      // Requests arrive parsed by addJsonEndpoint against the endpoint's schema; answers are parsed on the way out.
      const add = <K extends ProxyEndpointName>(key: K, fn: (vc: Vcenter, req: ProxyRequest<K>) => Promise<ProxyResponse<K>>) => {
        // TypeScript cannot correlate E[K] with ProxyRequest<K> (microsoft/TypeScript#30581); the
        // values are still parsed against E[key]'s own schemas at run time.
        const ep = E[key] as unknown as JsonEndpoint<z.ZodType<ProxyRequest<K>>, z.ZodType<ProxyResponse<K>>>;
        addJsonEndpoint(svc, ep, measured(ep.name, (req: ProxyRequest<K>) => fn(pick(req.vcenter), req)), log);
      };
      add("vmGet", async (vc, req) => ({ vm: await vc.getVm(req.vm) }));
      add("vmInfo", async (vc, req) => ({ vm: await vc.infoOf(req.vm) }));
      add("vmList", async (vc, req) => ({ vms: await vc.list(req) }));
      add("templateList", async (vc) => ({ templates: await vc.templates() }));
      add("datastoreList", async (vc) => ({ datastores: await vc.datastores() }));
      add("datastoreVms", async (vc, req) => ({ vms: await vc.datastoreVms(req.datastore) }));
      add("vmPower", async (vc, req) => ({ vm: await vc.power(req.vm, req.action, req.timeoutMs ?? t) }));
      add("vmCreate", (vc, req) => createVm(vc, req, t));
      add("vmClone", (vc, req) => cloneVm(vc, req, t));
      add("vmDestroy", (vc, req) => destroyVm(vc, req, t));
      add("vmReconfigure", (vc, req) => reconfigureVm(vc, req, t));
      add("vmRelocate", (vc, req) => relocateVm(vc, req, t));
      add("eventsRead", (vc, req) => readEvents(vc, req));
      return service;
    },
    async stop(): Promise<void> {
      await service?.stop();
    },
  };
}
