/**
 * Hostile traffic cannot stop the system (issue 12): a running bridge and gateway keep answering
 * /healthz throughout 50 concurrent 900 kB events of the heap-exhaustion shape (`data` an array
 * of 300,000 empty objects), no service exits, and afterwards a real event and a real Slack
 * command still go through. The bridge runs as its own process under the production heap cap
 * (deploy/node-options: 96 MB of old space), where the flood used to end it with SIGABRT.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, startHealthServer, type HealthServer } from "@iaas/runtime";
import { waitUntil } from "@iaas/testkit";
import { startSystem, type System } from "./harness.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const TOKEN = "hostile-test-bridge-token";
const nodeOptions = readFileSync(join(root, "deploy/node-options"), "utf8").trim();
const alarm = readFileSync(join(root, "services/veba-bridge/test/fixtures/veba/AlarmStatusChangedEvent.datastore-usage-on-disk.data.json"), "utf8");

interface Answer {
  status: number;
  reason?: string;
  /** The connection was cut before an answer was read (the server closes after an early refusal). */
  cut?: string;
}

/** One POST on its own connection, the whole body written at once, as a flood would. */
function post(url: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(url, { method: "POST", agent: false, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let reason: string | undefined;
        try {
          reason = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: { reason?: string } }).error?.reason;
        } catch {
          reason = undefined;
        }
        resolve({ status: res.statusCode ?? 0, ...(reason ? { reason } : {}) });
      });
      res.on("error", (err: NodeJS.ErrnoException) => resolve({ status: 0, cut: err.code ?? err.message }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ status: 0, cut: err.code ?? err.message }));
    req.end(body);
  });
}

async function healthz(url: string): Promise<string | undefined> {
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return r.ok ? undefined : `HTTP ${r.status}`;
  } catch (err) {
    return String((err as Error).message);
  }
}

/** The hostile shape: a structured event whose data holds `n` empty objects (3 bytes each). */
function hostileEvent(i: number, n = 300_000): string {
  return `{"specversion":"1.0","id":"hostile-${i}","source":"https://vcenter.hostile.example/sdk","type":"com.vmware.vsphere.VmPoweredOffEvent.v0","data":{"Key":${i},"Junk":[${"{},".repeat(n - 1)}{}]}}`;
}

describe("hostile traffic against a running bridge and gateway", () => {
  let sys: System;
  let bridge: ChildProcess;
  let gatewayHealth: HealthServer;
  let eventsUrl = "";
  let bridgeHealthUrl = "";
  const bridgeLog: string[] = [];

  beforeAll(async () => {
    sys = await startSystem();
    // The gateway runs in this process (the system builder builds it); its health server as its main wires one.
    gatewayHealth = await startHealthServer({ host: "127.0.0.1", port: 0, checks: { nats: () => !sys.nc.isClosed() }, registry: sys.metrics.gateway.registry, log: createLogger("e2e", "silent") });
    bridge = spawn(process.execPath, [join(root, "services/veba-bridge/dist/main.js")], {
      env: { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions, NATS_URL: sys.nats.url, BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", HEALTH_PORT: "0", HEALTH_HOST: "127.0.0.1", BRIDGE_TOKEN: TOKEN, LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const s of [bridge.stdout!, bridge.stderr!]) {
      createInterface({ input: s }).on("line", (line) => {
        bridgeLog.push(line);
        try {
          const j = JSON.parse(line) as { url?: string; health?: string };
          if (!eventsUrl && j.url?.startsWith("http") && j.url.endsWith("/events")) eventsUrl = j.url;
          if (j.health) bridgeHealthUrl = j.health;
        } catch {
          // not a log line
        }
      });
    }
    await waitUntil("the bridge to be ready", () => (eventsUrl && bridgeHealthUrl ? true : bridge.exitCode === null ? undefined : Promise.reject(new Error(`the bridge exited: ${bridgeLog.slice(-5).join("\n")}`))), 30_000);
  }, 120_000);

  afterAll(async () => {
    if (bridge && bridge.exitCode === null && bridge.signalCode === null) {
      const exited = new Promise((r) => bridge.once("exit", r));
      bridge.kill("SIGTERM");
      await exited;
    }
    await gatewayHealth?.close();
    await sys?.stop();
  });

  it("50 concurrent 900 kB events: both keep answering /healthz, nothing exits, real traffic goes through after", async () => {
    const gatewayHealthUrl = `http://127.0.0.1:${gatewayHealth.port}`;
    const headers = { "content-type": "application/cloudevents+json", authorization: `Bearer ${TOKEN}` };
    const bodies = Array.from({ length: 50 }, (_, i) => hostileEvent(i + 1));
    expect(bodies[0]!.length).toBeGreaterThan(900_000);

    let flooding = true;
    const healthFailures: string[] = [];
    let probes = 0;
    const probe = (async () => {
      while (flooding) {
        for (const [name, url] of [["veba-bridge", bridgeHealthUrl], ["gateway", gatewayHealthUrl]] as const) {
          const failure = await healthz(url);
          probes += 1;
          if (failure) healthFailures.push(`${name}: ${failure}`);
        }
      }
    })();

    // Other hostile load joins the flood here, each a promise that runs while the events are sent
    // (the pathological `list` glob against the gateway belongs in this list).
    const alsoDuringTheFlood: Promise<unknown>[] = [];

    const answers = await Promise.all(bodies.map((b) => post(eventsUrl, headers, b)));
    await Promise.all(alsoDuringTheFlood);
    flooding = false;
    await probe;

    expect(bridge.exitCode, bridgeLog.slice(-5).join("\n")).toBeNull();
    expect(bridge.signalCode).toBeNull();
    expect(healthFailures).toEqual([]);
    expect(probes).toBeGreaterThan(0);
    // Each is refused: too many values once read (413), or no room for it beside the ones held (503, retry later).
    const kinds = answers.map((a) => (a.cut ? `cut:${a.cut}` : `${a.status} ${a.reason}`));
    for (const k of kinds) expect(["413 too_many_values", "503 busy"]).toContain(k);
    expect(kinds).toContain("413 too_many_values");
    expect(bridgeLog.join("\n")).not.toMatch(/heap|RangeError|"level":"(error|fatal)"/);

    const real = await post(eventsUrl, { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "real-1", "ce-source": "https://vcenter.hostile.example/sdk", "ce-type": "com.vmware.vsphere.AlarmStatusChangedEvent.v0", authorization: `Bearer ${TOKEN}` }, alarm);
    expect(real).toEqual({ status: 200 });
    expect((await sys.slash("help")).status).toBe(200);
    expect(await healthz(bridgeHealthUrl)).toBeUndefined();
    expect(await healthz(gatewayHealthUrl)).toBeUndefined();
  }, 180_000);

  it("50 concurrent events just under the value limit (49,000 empty objects each: 98,000 counted) are parsed one at a time: stored or 503, the bridge lives", async () => {
    const headers = { "content-type": "application/cloudevents+json", authorization: `Bearer ${TOKEN}` };
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post(eventsUrl, headers, hostileEvent(1_000 + i, 49_000))));
    const kinds = answers.map((a) => (a.cut ? `cut:${a.cut}` : `${a.status} ${a.reason ?? ""}`.trim()));
    for (const k of kinds) expect(["200", "503 busy"]).toContain(k);
    expect(kinds).toContain("200");
    expect(bridge.exitCode, bridgeLog.slice(-5).join("\n")).toBeNull();
    expect(bridge.signalCode).toBeNull();
    expect(await healthz(bridgeHealthUrl)).toBeUndefined();
  }, 180_000);
});
