#!/usr/bin/env node
// Runs the whole system in one terminal (npm start). Embedded defaults fill what the environment
// leaves out: a nats-server with JetStream when NATS_URL is unset, the vCenter simulator with its
// demo inventory when VCENTER_URL is unset, and a local Slack stand-in when neither SLACK_SIGNING_SECRET
// nor SLACK_APP_TOKEN is set (then `node scripts/slack.mjs "power off DC0_H0_VM0"` plays a signed Slack request).
// Ctrl-C stops everything cleanly.
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { createInterface } from "node:readline";

const root = fileURLToPath(new URL("..", import.meta.url));
const runDir = join(root, ".run");
const kit = await import(join(root, "packages/testkit/dist/mod.js"));

/** The services, in start order. Each gets its own health port. */
const SERVICES = [
  { name: "vcenter-proxy", healthPort: 9101 },
  { name: "power", healthPort: 9102 },
  { name: "vm-lifecycle", healthPort: 9103 },
  { name: "remediation", healthPort: 9104 },
  { name: "gateway", healthPort: 9100 },
  // With the embedded simulator there is no VEBA: the bridge's built-in poller reads its events.
  { name: "veba-bridge", healthPort: 9105, env: () => (embeddedVcenter && env.POLLER_ENABLED === undefined ? { POLLER_ENABLED: "true", POLL_INTERVAL_MS: "2000" } : {}) },
];

const env = { ...process.env };
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
  say(`embedded nats-server with JetStream at ${nats.url} (data in .run/nats)`);
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
  const secretFile = join(runDir, "slack-signing-secret");
  const secret = await readFile(secretFile, "utf8").catch(() => randomBytes(24).toString("hex"));
  await writeFile(secretFile, secret, { mode: 0o600 });
  await chmod(secretFile, 0o600);
  env.SLACK_SIGNING_SECRET = secret;
  env.SLACK_API_URL = slack.apiUrl;
  await writeFile(join(runDir, "local-slack.json"), JSON.stringify({ apiUrl: slack.apiUrl, gateway: `http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}/slack/events` }));
  say(`no SLACK_SIGNING_SECRET or SLACK_APP_TOKEN: local Slack stand-in at ${slack.apiUrl} (secret in .run/slack-signing-secret)`);
  say(`try: node scripts/slack.mjs "power off DC0_H0_VM0"`);
}
if (!env.IAAS_ADMINS) env.IAAS_ADMINS = "U0001";

// V8 heap limits for the services (deploy/node-options); NODE_OPTIONS given here comes after, so it wins.
const nodeOptions = [(await readFile(join(root, "deploy", "node-options"), "utf8")).trim(), env.NODE_OPTIONS ?? ""].join(" ").trim();

let stopping = false;
for (const svc of SERVICES) {
  const child = spawn(process.execPath, [join(root, "services", svc.name, "dist", "main.js")], {
    env: { ...env, NODE_OPTIONS: nodeOptions, ...(svc.env?.() ?? {}), HEALTH_PORT: env[`${svc.name.toUpperCase().replace(/-/g, "_")}_HEALTH_PORT`] ?? String(svc.healthPort) },
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group: Ctrl-C reaches only this script, which then stops each child once, in order.
    detached: true,
  });
  children.push({ svc, child });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(pretty ? format(svc.name, line) : line));
  }
  child.on("exit", (code, signal) => {
    if (!stopping) {
      say(`${svc.name} exited (${signal ?? code}); stopping everything`);
      void shutdown(1);
    }
  });
  say(`${svc.name}: health, readiness and metrics at http://127.0.0.1:${svc.healthPort}/{healthz,readyz,metrics}`);
}
say(`gateway: Slack requests at http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}/slack/events`);
say(`veba-bridge: CloudEvents from VEBA at http://127.0.0.1:${env.BRIDGE_PORT ?? 8080}/events`);

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say("stopping services");
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
