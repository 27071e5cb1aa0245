import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./log.js";

export type ReadinessCheck = () => boolean | Promise<boolean>;

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/**
 * `/healthz` (the process answers), `/readyz` (every readiness check passes: NATS connected,
 * and for the proxy a live vCenter session) and `/metrics` (Prometheus text format).
 */
export async function startHealthServer(opts: { host: string; port: number; checks: Record<string, ReadinessCheck>; registry: Registry; log: Logger }): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405).end();
        return;
      }
      if (path === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const results: Record<string, boolean> = {};
        for (const [name, check] of Object.entries(opts.checks)) {
          try {
            results[name] = await check();
          } catch {
            results[name] = false;
          }
        }
        const ready = Object.values(results).every(Boolean);
        res.writeHead(ready ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ready, checks: results }));
      } else if (path === "/metrics") {
        res.writeHead(200, { "content-type": opts.registry.contentType }).end(await opts.registry.metrics());
      } else {
        res.writeHead(404).end();
      }
    })().catch((err: unknown) => {
      opts.log.error({ err }, "health endpoint failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
