/**
 * `npm start` (scripts/start.mjs) keeps the system up when one service dies: the dead one is
 * restarted after a back-off, the others keep answering, and Ctrl-C (SIGINT) still stops all; with its
 * local Slack stand-in, notices reach the stand-in's notify channel.
 * Cheap on purpose: only the gateway and veba-bridge, on free ports, state in a temporary dir.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noticeSubject } from "@iaas/contracts";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { waitUntil } from "@iaas/testkit";

const root = fileURLToPath(new URL("../..", import.meta.url));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3_000) })).ok;
  } catch {
    return false;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("npm start when a service dies", () => {
  let start: ChildProcess;
  let runDir: string;
  let out = "";
  const ports = { gateway: 0, bridge: 0, gatewayHealth: 0, bridgeHealth: 0, console: 0 };
  const pidsOf = (name: string) => [...out.matchAll(new RegExp(`\\[start\\] ${name} started \\(pid (\\d+)\\)`, "g"))].map((m) => Number(m[1]));

  beforeAll(async () => {
    runDir = await mkdtemp(join(tmpdir(), "iaas-start-"));
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    start = spawn(process.execPath, [join(root, "scripts/start.mjs")], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        IAAS_RUN_DIR: runDir,
        IAAS_SERVICES: "gateway,veba-bridge",
        // No vcenter-proxy runs here: nothing may reach for vCenter, so no simulator either.
        VCENTER_URL: "https://127.0.0.1:1/sdk",
        POLLER_ENABLED: "false",
        GATEWAY_PORT: String(ports.gateway),
        BRIDGE_PORT: String(ports.bridge),
        BRIDGE_HOST: "127.0.0.1",
        GATEWAY_HEALTH_PORT: String(ports.gatewayHealth),
        VEBA_BRIDGE_HEALTH_PORT: String(ports.bridgeHealth),
        SLACK_CONSOLE_PORT: String(ports.console),
        LOG_FORMAT: "json",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    start.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    start.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    await waitUntil("both services healthy", async () => (await healthy(ports.gatewayHealth)) && (await healthy(ports.bridgeHealth)), 60_000);
  }, 90_000);

  afterAll(async () => {
    if (start && start.exitCode === null) start.kill("SIGKILL");
    await rm(runDir, { recursive: true, force: true });
  });

  it("restarts the dead one, the other keeps answering, and the bridge asks for the generated token", async () => {
    const [bridgePid] = pidsOf("veba-bridge");
    const [gatewayPid] = pidsOf("gateway");
    expect(bridgePid).toBeGreaterThan(0);
    const token = (await readFile(join(runDir, "bridge-token"), "utf8")).trim();
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${ports.bridge}/events`, { method: "POST", headers: { "content-type": "application/cloudevents+json", ...headers }, body: "{}" });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(400);

    process.kill(bridgePid!, "SIGABRT");
    await waitUntil("the bridge to be restarted", async () => pidsOf("veba-bridge").length === 2, 30_000);
    expect(out).toMatch(new RegExp(`veba-bridge \\(pid ${bridgePid}\\) exited \\(SIGABRT\\); restarting it in 1 s`));
    expect(await healthy(ports.gatewayHealth)).toBe(true);
    await waitUntil("the new bridge healthy", () => healthy(ports.bridgeHealth), 30_000);
    expect(pidsOf("gateway")).toEqual([gatewayPid]);
    expect(alive(gatewayPid!)).toBe(true);
    expect(start.exitCode).toBeNull();
    // The same token after the restart.
    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(400);
  }, 90_000);

  it("with the local Slack stand-in, notices are posted to its notify channel (scripts/slack.mjs --notices shows them)", async () => {
    const natsUrl = /embedded nats-server with JetStream at (\S+)/.exec(out)?.[1];
    expect(natsUrl).toBeTruthy();
    const nc = await connect({ servers: natsUrl! });
    try {
      const text = `Start check ${Date.now()}`;
      const notice = { id: `rem-start-${Date.now()}`, kind: "remediation.skip", severity: "info", text, at: new Date().toISOString() };
      await jetstream(nc).publish(noticeSubject("remediation.skip"), JSON.stringify(notice), { msgID: notice.id });
      const shown = await waitUntil("the notice in the stand-in's notify channel", async () => {
        const r = spawnSync(process.execPath, [join(root, "scripts/slack.mjs"), "--notices"], { env: { PATH: process.env.PATH, IAAS_RUN_DIR: runDir }, encoding: "utf8" });
        return r.stdout.includes(text) ? r.stdout : undefined;
      }, 30_000);
      expect(shown.split("\n").filter((l) => l.includes(text))).toHaveLength(1);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("scripts/slack.mjs ends with a query answered in the ack, its blocks as text and Slack's escapes decoded", () => {
    const r = spawnSync(process.execPath, [join(root, "scripts/slack.mjs"), "help", "--user", "U0002"], { env: { PATH: process.env.PATH, IAAS_RUN_DIR: runDir }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("ack (HTTP 200");
    expect(r.stdout).toContain("/iaas commands you can run");
    // Decoded and unstyled: `<vm>`, not `&lt;vm&gt;`; no mrkdwn asterisks.
    expect(r.stdout).toContain("<vm>");
    expect(r.stdout).not.toContain("&lt;");
    expect(r.stdout).not.toContain("*/iaas");
    // It did not wait for replies that a query never gets.
    expect(r.stdout).not.toContain("no reply within");
  }, 60_000);

  it("logs the web console's URL, on loopback, and serves the page there", async () => {
    expect(out).toContain(`[start] console: http://127.0.0.1:${ports.console}/`);
    const page = await fetch(`http://127.0.0.1:${ports.console}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('aria-label="Message #iaas"');
  });

  it("SIGINT still stops everything", async () => {
    expect(start.exitCode).toBeNull();
    const pids = [...pidsOf("veba-bridge"), ...pidsOf("gateway")];
    const exited = new Promise<number | null>((r) => start.once("exit", (code) => r(code)));
    start.kill("SIGINT");
    expect(await exited).toBe(0);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  }, 60_000);
});
