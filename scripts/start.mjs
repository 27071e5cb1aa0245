#!/usr/bin/env node
// Runs the whole system in one terminal (npm start). Embedded defaults fill what the environment
// leaves out: a nats-server with JetStream when NATS_URL is unset, the vCenter simulator with its
// demo inventory when VCENTER_URL is unset, and a local Slack stand-in when neither SLACK_SIGNING_SECRET
// nor SLACK_APP_TOKEN is set (with a web console at http://127.0.0.1:3001/, SLACK_CONSOLE_PORT, that plays a Slack
// channel, and `node scripts/slack.mjs "power off DC0_H0_VM0"` that plays a signed Slack request from a terminal),
// and a bearer token for veba-bridge (.run/bridge-token) when no bridge credentials are given.
// A service that exits is restarted after a back-off (1 s doubling up to 30 s; back to 1 s once it
// has run a minute); the others keep running. Ctrl-C stops everything cleanly.
// IAAS_RUN_DIR moves the state (default .run); IAAS_SERVICES=a,b runs only those services.
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const root = fileURLToPath(new URL("..", import.meta.url));
const runDir = process.env.IAAS_RUN_DIR ? resolve(process.env.IAAS_RUN_DIR) : join(root, ".run");
const runName = process.env.IAAS_RUN_DIR ? runDir : ".run";
const kit = await import(join(root, "packages/testkit/dist/mod.js"));

/** The services, in start order. Each gets its own health port. */
const SERVICES = [
  { name: "vcenter-proxy", healthPort: 9101 },
  { name: "power", healthPort: 9102 },
  { name: "vm-lifecycle", healthPort: 9103 },
  { name: "lease-keeper", healthPort: 9106 },
  { name: "remediation", healthPort: 9104 },
  { name: "gateway", healthPort: 9100 },
  // With the embedded simulator there is no VEBA: the bridge's built-in poller reads its events.
  { name: "veba-bridge", healthPort: 9105, env: () => (embeddedVcenter && env.POLLER_ENABLED === undefined ? { POLLER_ENABLED: "true", POLL_INTERVAL_MS: "2000" } : {}) },
];

const env = { ...process.env };
const only = env.IAAS_SERVICES ? env.IAAS_SERVICES.split(",").map((n) => n.trim()).filter(Boolean) : undefined;
const unknown = only?.filter((n) => !SERVICES.some((s) => s.name === n)) ?? [];
if (unknown.length) {
  console.error(`[start] IAAS_SERVICES: no service called ${unknown.join(", ")} (the services: ${SERVICES.map((s) => s.name).join(", ")})`);
  process.exit(2);
}
const selected = only ? SERVICES.filter((s) => only.includes(s.name)) : SERVICES;
const stoppers = [];
const children = [];
/** Detached helpers (NATS, simulator) to kill if this script exits without a clean stop. */
const pids = [];
const pretty = process.stdout.isTTY && env.LOG_FORMAT !== "json";
const say = (msg) => console.log(`[start] ${msg}`);

await mkdir(runDir, { recursive: true });

if (!env.NATS_URL) {
  const nats = await kit.startNatsServer({ storeDir: join(runDir, "nats"), detached: true });
  env.NATS_URL = nats.url;
  stoppers.push(() => nats.stop());
  pids.push(() => nats.pid);
  say(`embedded nats-server with JetStream at ${nats.url} (data in ${runName}/nats)`);
} else {
  say(`using NATS at ${env.NATS_URL}`);
}

const embeddedVcenter = !env.VCENTER_URL;
if (embeddedVcenter) {
  const sim = await kit.startVcsim({ detached: true });
  env.VCENTER_URL = sim.url;
  env.VCENTER_USERNAME = sim.username;
  env.VCENTER_PASSWORD = sim.password;
  env.VCENTER_INSECURE = "true";
  stoppers.push(() => sim.stop());
  pids.push(() => sim.pid);
  say(`embedded vCenter simulator at ${sim.url} (demo inventory: DC0, VMs DC0_H0_VM0..., template tmpl-ubuntu-22.04)`);
} else {
  say(`using vCenter at ${env.VCENTER_URL}`);
}

// A real Slack app is configured by its signing secret (HTTP) or its app-level token (Socket Mode).
if (!env.SLACK_SIGNING_SECRET && !env.SLACK_APP_TOKEN) {
  const slack = await kit.SlackStandIn.start();
  stoppers.push(() => slack.close());
  // A team for the console's plain user and their teammate (U0002, U0003), read by the gateway's usergroups.list.
  slack.usergroups = [{ id: "S0DEMO", users: ["U0002", "U0003"] }];
  env.SLACK_SIGNING_SECRET = await localSecret("slack-signing-secret");
  env.SLACK_API_URL = slack.apiUrl;
  // A bot token and a notify channel for the stand-in, so remediation's notices are posted there too.
  // The stand-in accepts any token: a random one, kept in the run folder like the signing secret.
  if (!env.SLACK_BOT_TOKEN) env.SLACK_BOT_TOKEN = await localSecret("slack-bot-token");
  if (!env.SLACK_NOTIFY_CHANNEL) env.SLACK_NOTIFY_CHANNEL = "C0NOTIFY";
  await writeFile(join(runDir, "local-slack.json"), JSON.stringify({ apiUrl: slack.apiUrl, gateway: `http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}/slack/events`, notifyChannel: env.SLACK_NOTIFY_CHANNEL }));
  say(`no SLACK_SIGNING_SECRET or SLACK_APP_TOKEN: local Slack stand-in at ${slack.apiUrl} (secret in ${runName}/slack-signing-secret)`);
  // The web console: a page that plays a Slack channel with the app in it (loopback only).
  const consolePort = Number(env.SLACK_CONSOLE_PORT ?? 3001);
  const gatewayUrl = `http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}/slack/events`;
  const web = await kit.SlackConsole.start({ slack, gatewayUrl, secret: env.SLACK_SIGNING_SECRET, port: consolePort }).catch((err) => {
    say(`console: cannot listen on 127.0.0.1:${consolePort} (${err.code ?? err.message}); SLACK_CONSOLE_PORT picks another port. Running without it.`);
    return undefined;
  });
  if (web) {
    stoppers.push(() => web.close());
    say(`console: ${web.url} (a Slack channel in your browser: type /iaas help; act as the admin, a plain user or their teammate)`);
  }
  say(`or in a terminal: node scripts/slack.mjs "power off DC0_H0_VM0"; notices go to channel ${env.SLACK_NOTIFY_CHANNEL} (node scripts/slack.mjs --notices)`);
}
if (!env.IAAS_ADMINS) env.IAAS_ADMINS = "U0001";

// The bridge takes events only with credentials unless BRIDGE_AUTH=none: without any, a token of our own.
const bridgeToken = !env.BRIDGE_TOKEN && !env.BRIDGE_USERNAME && env.BRIDGE_AUTH !== "none";
if (bridgeToken) env.BRIDGE_TOKEN = await localSecret("bridge-token");

/** A secret kept in the run directory (mode 0600), made on first use, the same on every start. */
async function localSecret(name) {
  const file = join(runDir, name);
  const secret = (await readFile(file, "utf8").catch(() => "")).trim() || randomBytes(24).toString("hex");
  await writeFile(file, secret, { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

// V8 heap limits for the services (deploy/node-options); NODE_OPTIONS given here comes after, so it wins.
const nodeOptions = [(await readFile(join(root, "deploy", "node-options"), "utf8")).trim(), env.NODE_OPTIONS ?? ""].join(" ").trim();

let stopping = false;
/** A restart waits 1 s, doubling up to 30 s while a service keeps dying; a minute's run resets it. */
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const HEALTHY_RUN_MS = 60_000;

function run(svc, attempt = 0) {
  const child = spawn(process.execPath, [join(root, "services", svc.name, "dist", "main.js")], {
    env: { ...env, NODE_OPTIONS: nodeOptions, ...(svc.env?.() ?? {}), HEALTH_PORT: healthPortOf(svc) },
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group: Ctrl-C reaches only this script, which then stops each child once, in order.
    detached: true,
  });
  const entry = { svc, child, timer: undefined };
  const i = children.findIndex((c) => c.svc === svc);
  if (i >= 0) children[i] = entry;
  else children.push(entry);
  const started = Date.now();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(pretty ? format(svc.name, line) : line));
  }
  child.on("exit", (code, signal) => {
    if (stopping) return;
    const next = Date.now() - started >= HEALTHY_RUN_MS ? 0 : attempt + 1;
    const delay = Math.min(BACKOFF_FIRST_MS * 2 ** Math.max(0, next - 1), BACKOFF_MAX_MS);
    say(`${svc.name} (pid ${child.pid}) exited (${signal ?? code}); restarting it in ${delay / 1000} s, the other services keep running`);
    entry.timer = setTimeout(() => {
      if (!stopping) run(svc, next);
    }, delay);
  });
  say(`${svc.name} started (pid ${child.pid})${attempt ? `, restart ${attempt}` : ""}`);
}

function healthPortOf(svc) {
  return env[`${svc.name.toUpperCase().replace(/-/g, "_")}_HEALTH_PORT`] ?? String(svc.healthPort);
}

for (const svc of selected) {
  run(svc);
  say(`${svc.name}: health, readiness and metrics at http://127.0.0.1:${healthPortOf(svc)}/{healthz,readyz,metrics}`);
}
if (selected.some((s) => s.name === "gateway")) say(`gateway: Slack requests at http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}/slack/events`);
if (selected.some((s) => s.name === "veba-bridge")) {
  say(`veba-bridge: CloudEvents from VEBA at http://127.0.0.1:${env.BRIDGE_PORT ?? 8080}/events`);
  if (bridgeToken) say(`veba-bridge: send -H "Authorization: Bearer $(cat ${runName}/bridge-token)"`);
}

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say("stopping services");
  for (const c of children) clearTimeout(c.timer);
  await Promise.all(
    children.map(
      ({ child }) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", resolve);
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
        }),
    ),
  );
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  say("stopped");
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
// If this script dies some other way, do not leave detached services behind.
process.on("exit", () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const pid of pids.map((p) => p()).filter(Boolean)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
process.on("SIGTERM", () => void shutdown(0));

/** One readable line from a pino JSON line; other lines pass through. */
function format(name, line) {
  try {
    const o = JSON.parse(line);
    const { level, time, msg, service, pid, hostname, name: _n, ...rest } = o;
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : "";
    return `${(time ?? "").slice(11, 23)} ${String(level).padEnd(5)} [${name}] ${msg ?? ""}${extra}`;
  } catch {
    return `[${name}] ${line}`;
  }
}
