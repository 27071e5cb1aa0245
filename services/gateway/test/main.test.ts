import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseEnvSchema, connectNats, createLogger, loadConfig } from "@iaas/runtime";
import { SlackStandIn, postSigned, slashCommandBody, startNatsServer, stopProcess, waitUntil, type NatsServer } from "@iaas/testkit";

const serviceDir = fileURLToPath(new URL("..", import.meta.url));

function runMain(env: Record<string, string>): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: serviceDir,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

describe("main: configuration", () => {
  it("exits non-zero naming a missing or invalid variable, without echoing values", async () => {
    const p = runMain({ SLACK_API_URL: "not a url", GATEWAY_PORT: "99999", SLACK_BOT_TOKEN: "xoxb-not-real" });
    const [code] = (await once(p.child, "exit")) as [number];
    expect(code).not.toBe(0);
    expect(p.err()).toContain("SLACK_SIGNING_SECRET: is required");
    expect(p.err()).toContain("SLACK_API_URL");
    expect(p.err()).toContain("GATEWAY_PORT");
    expect(p.err() + p.out()).not.toContain("xoxb-not-real");
  });
});

describe("main: a running gateway", () => {
  let nats: NatsServer;
  let slack: SlackStandIn;
  let p: ReturnType<typeof runMain>;
  let started: { slackPort: number; healthPort: number };

  beforeAll(async () => {
    [nats, slack] = await Promise.all([startNatsServer(), SlackStandIn.start()]);
    p = runMain({
      NATS_URL: nats.url,
      SLACK_SIGNING_SECRET: "main-secret",
      SLACK_API_URL: slack.apiUrl,
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
      HEALTH_PORT: "0",
    });
    started = await waitUntil(
      "the gateway to start",
      () => {
        if (p.child.exitCode !== null) throw new Error(`exited: ${p.err()}`);
        const line = p.out().split("\n").find((l) => l.includes('"gateway ready"'));
        return line ? (JSON.parse(line) as { slackPort: number; healthPort: number }) : undefined;
      },
      30_000,
    );
  });
  afterAll(async () => {
    if (p?.child) await stopProcess(p.child);
    await slack?.close();
    await nats?.dispose();
  });

  it("answers /healthz, /readyz and /metrics", async () => {
    const base = `http://127.0.0.1:${started.healthPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { nats: true } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("iaas_gateway_ack_seconds");
  });

  it("registers the micro service `gateway`", async () => {
    const nc = await connectNats(loadConfig(BaseEnvSchema, { NATS_URL: nats.url }), "main-test", createLogger("main-test", "silent"));
    try {
      const m = await nc.request("$SRV.INFO.gateway", undefined, { timeout: 5_000 });
      expect(m.json()).toMatchObject({ name: "gateway", type: "io.nats.micro.v1.info_response" });
    } finally {
      await nc.close();
    }
  });

  it("takes a signed slash command on POST /slack/events", async () => {
    const body = slashCommandBody({ text: "power on web-01", response_url: slack.responseUrl() });
    const r = await postSigned(`http://127.0.0.1:${started.slackPort}/slack/events`, body, { secret: "main-secret" });
    expect(r.status).toBe(200);
    expect((r.json as { text: string }).text).toMatch(/^Powering on `web-01`… \(request `r-/);
  });

  it("stops cleanly on SIGTERM", async () => {
    const exited = once(p.child, "exit");
    p.child.kill("SIGTERM");
    const [code] = (await exited) as [number];
    expect(code).toBe(0);
    expect(p.out()).not.toContain("main-secret");
  });
});

/**
 * The process over Socket Mode, Slack unreachable during a reconnect: the case that ended it (an
 * unhandled rejection in @slack/socket-mode's reconnect timer, see test/socket-mode-outage.test.ts).
 * It stays up, /readyz says not ready while the connection is down, and it reconnects.
 */
describe("main: over Socket Mode, Slack unreachable during a reconnect", () => {
  const APP_TOKEN = "xapp-fake-main";
  let nats: NatsServer;
  let slack: SlackStandIn;
  let p: ReturnType<typeof runMain>;
  let readyz: () => Promise<{ status: number; body: unknown }>;

  beforeAll(async () => {
    [nats, slack] = await Promise.all([startNatsServer(), SlackStandIn.start({ appToken: APP_TOKEN })]);
    p = runMain({ NATS_URL: nats.url, SLACK_SIGNING_SECRET: "main-secret", SLACK_API_URL: slack.apiUrl, SLACK_APP_TOKEN: APP_TOKEN, HEALTH_PORT: "0" });
    const started = await waitUntil(
      "the gateway to start",
      () => {
        if (p.child.exitCode !== null) throw new Error(`exited: ${p.err()}`);
        const line = p.out().split("\n").find((l) => l.includes('"gateway ready"'));
        return line ? (JSON.parse(line) as { healthPort: number }) : undefined;
      },
      30_000,
    );
    readyz = async () => {
      const r = await fetch(`http://127.0.0.1:${started.healthPort}/readyz`);
      return { status: r.status, body: await r.json() };
    };
  });
  afterAll(async () => {
    if (p?.child) await stopProcess(p.child);
    await slack?.close();
    await nats?.dispose();
  });

  it("keeps running, is not ready while apps.connections.open answers 503, reconnects once Slack answers, and logs no token", async () => {
    expect(await readyz()).toEqual({ status: 200, body: { ready: true, checks: { nats: true, slack: true } } });
    const before = slack.apiCalls("apps.connections.open").length;
    slack.connectionsOpenFailure = "http_503";
    slack.disconnectSockets();
    // One whole failed attempt (three calls with the WebClient's retries), logged.
    await waitUntil("a failed reconnect attempt", () => p.out().includes("could not reconnect to Slack over Socket Mode; retrying") && slack.apiCalls("apps.connections.open").length >= before + 3, 20_000);
    expect(p.child.exitCode).toBeNull();
    expect(await readyz()).toEqual({ status: 503, body: { ready: false, checks: { nats: true, slack: false } } });

    slack.connectionsOpenFailure = undefined;
    await waitUntil("reconnected", () => slack.socketsOpen === 1, 20_000);
    await waitUntil("ready again", async () => (await readyz()).status === 200);
    expect(p.child.exitCode).toBeNull();
    expect(p.out() + p.err()).not.toContain(APP_TOKEN);
    const warn = p.out().split("\n").find((l) => l.includes("could not reconnect"));
    expect(JSON.parse(warn!)).toMatchObject({ level: "warn", attempt: 1, retryInMs: 2000, reason: expect.stringContaining("slack_webapi_http_error") });
  });
});
