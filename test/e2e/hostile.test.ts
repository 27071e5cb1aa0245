/**
 * Hostile traffic cannot stop the system (issue 12): a running bridge and gateway keep answering
 * /healthz throughout 50 concurrent 900 kB events of the heap-exhaustion shape (`data` an array
 * of 300,000 empty objects), no service exits, and afterwards a real event and a real Slack
 * command still go through. The bridge runs as its own process under the production heap cap
 * (deploy/node-options: 96 MB of old space), where the flood used to end it with SIGABRT. A second
 * gateway runs as its own process too and takes a pathological `list` glob during the flood: in
 * the test's process a frozen event loop would freeze the probe with it and go unseen.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postSigned, signedHeaders, slashCommandBody, waitUntil } from "@iaas/testkit";

const signedHeadersFor = (body: string) => signedHeaders(SIGNING_SECRET, body);
import { SIGNING_SECRET, startSystem, type System } from "./harness.js";
import { rawClone } from "./helpers.js";

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

/**
 * A liveness probe as an orchestrator would make it: an answer within 5 s (Kubernetes waits 1 s by
 * default). Healthy answers take milliseconds; the frozen gateway this guards against took 10-15 s.
 */
async function healthz(url: string): Promise<string | undefined> {
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return r.ok ? undefined : `HTTP ${r.status}`;
  } catch (err) {
    return String((err as Error).message);
  }
}

interface Child {
  proc: ChildProcess;
  log: string[];
  /** Fields of the first log line that has them (`url`, `health`, `slackPort`). */
  seen: Record<string, unknown>;
}

function spawnService(main: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [join(root, main)], { env: { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions, HEALTH_PORT: "0", HEALTH_HOST: "127.0.0.1", LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const child: Child = { proc, log: [], seen: {} };
  for (const s of [proc.stdout!, proc.stderr!]) {
    createInterface({ input: s }).on("line", (line) => {
      child.log.push(line);
      try {
        for (const [k, v] of Object.entries(JSON.parse(line) as Record<string, unknown>)) if (!(k in child.seen)) child.seen[k] = v;
      } catch {
        // not a log line
      }
    });
  }
  return child;
}

async function stopChild(c: Child | undefined): Promise<void> {
  if (!c || c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once("exit", r));
  c.proc.kill("SIGTERM");
  await exited;
}

/** The hostile shape: a structured event whose data holds `n` empty objects (3 bytes each). */
function hostileEvent(i: number, n = 300_000): string {
  return `{"specversion":"1.0","id":"hostile-${i}","source":"https://vcenter.hostile.example/sdk","type":"com.vmware.vsphere.VmPoweredOffEvent.v0","data":{"Key":${i},"Junk":[${"{},".repeat(n - 1)}{}]}}`;
}

describe("hostile traffic against a running bridge and gateway", () => {
  let sys: System;
  let bridgeChild: Child;
  let gatewayChild: Child;
  let bridge: ChildProcess;
  let eventsUrl = "";
  let bridgeHealthUrl = "";
  let gatewayHealthUrl = "";
  let gatewaySlashUrl = "";
  let bridgeLog: string[] = [];
  let n = 0;

  /** A signed `/iaas` request to the gateway process, as Slack sends it. */
  async function slashToChild(text: string, user_id: string) {
    const responseUrl = sys.slack.responseUrl(`hostile-${++n}`);
    const r = await postSigned(gatewaySlashUrl, slashCommandBody({ text, response_url: responseUrl, user_id }), { secret: SIGNING_SECRET });
    return { status: r.status, body: r.body, responseUrl };
  }

  beforeAll(async () => {
    sys = await startSystem();
    bridgeChild = spawnService("services/veba-bridge/dist/main.js", { NATS_URL: sys.nats.url, BRIDGE_PORT: "0", BRIDGE_HOST: "127.0.0.1", BRIDGE_TOKEN: TOKEN });
    gatewayChild = spawnService("services/gateway/dist/main.js", { NATS_URL: sys.nats.url, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: sys.slack.apiUrl, IAAS_ADMINS: "UADMIN1" });
    bridge = bridgeChild.proc;
    bridgeLog = bridgeChild.log;
    for (const c of [bridgeChild, gatewayChild]) {
      await waitUntil("a service process to be ready", () => (typeof c.seen.health === "string" && (c === gatewayChild ? typeof c.seen.slackPort === "number" : typeof c.seen.url === "string") ? true : c.proc.exitCode === null ? undefined : Promise.reject(new Error(`exited: ${c.log.slice(-5).join("\n")}`))), 30_000);
    }
    eventsUrl = String(bridgeChild.seen.url);
    bridgeHealthUrl = String(bridgeChild.seen.health);
    gatewayHealthUrl = String(gatewayChild.seen.health);
    gatewaySlashUrl = `http://127.0.0.1:${String(gatewayChild.seen.slackPort)}/slack/events`;
  }, 120_000);

  afterAll(async () => {
    await stopChild(bridgeChild);
    await stopChild(gatewayChild);
    await sys?.stop();
  });

  it("50 concurrent 900 kB events: both keep answering /healthz, nothing exits, real traffic goes through after", async () => {
    const headers = { "content-type": "application/cloudevents+json", authorization: `Bearer ${TOKEN}` };
    await rawClone(sys, "a".repeat(44));
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

    // The pathological `list` glob joins the flood: against a VM named with 44 `a`s, a backtracking
    // matcher spent 11-15 s of the gateway's event loop on `*a*a*a*a*a*a*a*a*b`; a linear one answers in the ack.
    const globs: { status: number; body: string; responseUrl: string }[] = [];
    const alsoDuringTheFlood: Promise<unknown>[] = Array.from({ length: 3 }, () =>
      slashToChild("list all *a*a*a*a*a*a*a*a*b", "UADMIN1").then((r) => globs.push(r)),
    );

    const answers = await Promise.all(bodies.map((b) => post(eventsUrl, headers, b)));
    await Promise.all(alsoDuringTheFlood);
    flooding = false;
    await probe;

    expect(bridge.exitCode, bridgeLog.slice(-5).join("\n")).toBeNull();
    expect(bridge.signalCode).toBeNull();
    expect(gatewayChild.proc.exitCode, gatewayChild.log.slice(-5).join("\n")).toBeNull();
    expect(healthFailures).toEqual([]);
    expect(probes).toBeGreaterThan(0);
    // Each is refused: too many values once read (413), or no room for it beside the ones held (503, retry later).
    const kinds = answers.map((a) => (a.cut ? `cut:${a.cut}` : `${a.status} ${a.reason}`));
    for (const k of kinds) expect(["413 too_many_values", "503 busy"]).toContain(k);
    expect(kinds).toContain("413 too_many_values");
    expect(bridgeLog.join("\n")).not.toMatch(/heap|RangeError|"level":"(error|fatal)"/);
    expect(globs.map((g) => g.status)).toEqual([200, 200, 200]);
    // Answered in the ack, or on the response_url when the flood made it slower than the ack budget.
    for (const g of globs) {
      if (/No VMs matching/.test(g.body)) continue;
      await sys.slack.waitFor(() => sys.slack.postsTo(g.responseUrl).some((c) => JSON.stringify(c.body).includes("No VMs matching")), 30_000);
    }

    const real = await post(eventsUrl, { "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "real-1", "ce-source": "https://vcenter.hostile.example/sdk", "ce-type": "com.vmware.vsphere.AlarmStatusChangedEvent.v0", authorization: `Bearer ${TOKEN}` }, alarm);
    expect(real).toEqual({ status: 200 });
    expect((await slashToChild("help", "U0HOSTILE1")).status).toBe(200);
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

  // Before the gateway bounded the bodies it holds (Bolt reads up to 4 MB of each before checking
  // the signature, with no total), this ended the gateway with SIGABRT at its 96 MB heap.
  it("50 concurrent bodies of 4 MB and of just under the 1 MiB limit (unsigned and signed): the gateway keeps answering /healthz and does not exit", async () => {
    const body = (bytes: number) => `token=x&text=${"a".repeat(bytes - 13)}`;
    let flooding = true;
    const healthFailures: string[] = [];
    const probe = (async () => {
      while (flooding) {
        const failure = await healthz(gatewayHealthUrl);
        if (failure) healthFailures.push(failure);
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        ((big) => post(gatewaySlashUrl, { "content-type": "application/x-www-form-urlencoded", ...(i % 2 ? signedHeadersFor(big) : {}) }, big))(body(i % 4 < 2 ? 4 * 1024 * 1024 : 1024 * 1024 - 1000)),
      ),
    );
    flooding = false;
    await probe;
    expect(gatewayChild.proc.exitCode, gatewayChild.log.slice(-5).join("\n")).toBeNull();
    expect(gatewayChild.proc.signalCode).toBeNull();
    expect(healthFailures).toEqual([]);
    for (const a of answers) expect(a.status === 0 || a.status >= 400, JSON.stringify(a)).toBe(true);
    expect((await slashToChild("help", "U0HOSTILE1")).status).toBe(200);
  }, 180_000);
});
