import { IaasError, ProxyEndpoints, ServiceNames } from "@iaas/contracts";
import { addJsonEndpoint, addMicroService, type Logger, type Metrics, type NatsConnection, type Service } from "@iaas/runtime";
import { Counter, Histogram } from "@iaas/runtime";
import type { Vcenter } from "./vcenter.js";

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
      addJsonEndpoint(service, ProxyEndpoints.vmGet, measured("vm-get", async (req) => ({ vm: await pick(req.vcenter).getVm(req.vm) })), log);
      addJsonEndpoint(
        service,
        ProxyEndpoints.vmPower,
        measured("vm-power", async (req) => ({ vm: await pick(req.vcenter).power(req.vm, req.action, req.timeoutMs ?? deps.config.taskTimeoutMs) })),
        log,
      );
      return service;
    },
    async stop(): Promise<void> {
      await service?.stop();
    },
  };
}
