/**
 * What operators get to watch: every service's /metrics passes `promtool check metrics` (counters end
 * in `_total`, help on every metric, base units), the alert rules in deploy/prometheus/ pass
 * `promtool check rules`, and every metric named by a rule or by a panel of the Grafana dashboard in
 * deploy/grafana/ is one that a running service exports. The services run as `npm start` runs them
 * (scripts/start.mjs: one process each, the simulator, NATS and the Slack stand-in), and are scraped
 * over HTTP on their health ports. With OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small OTLP/JSON
 * receiver here, the command sent through Slack reaches it as one trace across the services.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { createServer as createHttpServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { waitUntil } from "@iaas/testkit";
import { metricNamesOf } from "./promql.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SERVICES = ["vcenter-proxy", "power", "vm-lifecycle", "remediation", "gateway", "veba-bridge", "lease-keeper"] as const;
type ServiceName = (typeof SERVICES)[number];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function get(port: number, path: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

/** promtool, or a clear failure naming the fix: these checks are never skipped. */
function promtool(args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync("promtool", args, { cwd: root, input, encoding: "utf8", timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error("promtool is not installed: run `bash scripts/setup.sh`, which installs it with Debian's prometheus package (`apt-get install --no-install-recommends prometheus`)");
  }
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The metric names a /metrics text declares, with the series names a histogram or summary adds. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

const rulesDir = join(root, "deploy/prometheus");
const dashboardsDir = join(root, "deploy/grafana");

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
}
interface Panel {
  id?: number;
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

async function ruleFiles(): Promise<string[]> {
  return (await readdir(rulesDir)).filter((f) => /\.ya?ml$/.test(f) && !f.endsWith(".test.yaml")).map((f) => join(rulesDir, f));
}
async function dashboards(): Promise<{ file: string; json: { title?: string; uid?: string; panels?: Panel[] } }[]> {
  const files = (await readdir(dashboardsDir)).filter((f) => f.endsWith(".json"));
  return Promise.all(files.map(async (f) => ({ file: f, json: JSON.parse(await readFile(join(dashboardsDir, f), "utf8")) })));
}
const allPanels = (panels: Panel[] = []): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels)]);

/** One span as an OTLP/JSON export carries it, with the service.name of its resource. */
interface OtlpSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
}
/** OTLP/JSON ids are hex (the spec); base64 is accepted too, as protobuf's JSON mapping has it. */
const hexId = (id: string | undefined) => (!id ? "" : /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex"));
function spansOf(body: unknown): OtlpSpan[] {
  type Attr = { key: string; value: { stringValue?: string } };
  const doc = body as { resourceSpans?: { resource?: { attributes?: Attr[] }; scopeSpans?: { scope?: { name?: string }; spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }[] }[] }[] };
  return (doc.resourceSpans ?? []).flatMap((rs) => {
    const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "";
    return (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((sp) => ({ service, scope: ss.scope?.name ?? "", traceId: hexId(sp.traceId), spanId: hexId(sp.spanId), parentSpanId: hexId(sp.parentSpanId), name: sp.name, kind: sp.kind })));
  });
}

describe("observability: metrics, alert rules and the dashboard", () => {
  let start: ChildProcess | undefined;
  let otlp: Server | undefined;
  const exportedSpans: OtlpSpan[] = [];
  const otlpRequests: { path: string; contentType: string }[] = [];
  let runDir: string;
  let out = "";
  const ports = {} as Record<ServiceName, number>;
  const scrapes = {} as Record<ServiceName, string>;

  beforeAll(async () => {
    // Fails at once, with the fix, when promtool is missing (before starting anything).
    expect(promtool(["--version"]).status).toBe(0);
    runDir = await mkdtemp(join(tmpdir(), "iaas-obs-"));
    for (const s of SERVICES) ports[s] = await freePort();
    const healthEnv = Object.fromEntries(SERVICES.map((s) => [`${s.toUpperCase().replace(/-/g, "_")}_HEALTH_PORT`, String(ports[s])]));
    const gatewayPort = await freePort();
    // An OTLP/HTTP receiver: what the services' exporters post to <endpoint>/v1/traces.
    otlp = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        otlpRequests.push({ path: req.url ?? "", contentType: String(req.headers["content-type"] ?? "") });
        try {
          exportedSpans.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
        } catch {
          // Not JSON: counted by the request's content type, asserted below.
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => otlp!.listen(0, "127.0.0.1", r));
    const otlpPort = (otlp.address() as { port: number }).port;
    start = spawn(process.execPath, [join(root, "scripts/start.mjs")], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        IAAS_RUN_DIR: runDir,
        GATEWAY_PORT: String(gatewayPort),
        BRIDGE_PORT: String(await freePort()),
        BRIDGE_HOST: "127.0.0.1",
        SLACK_CONSOLE_PORT: String(await freePort()),
        POLL_INTERVAL_MS: "500",
        LOG_FORMAT: "json",
        LOG_LEVEL: "warn",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`,
        OTEL_BSP_SCHEDULE_DELAY: "200",
        ...healthEnv,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    start.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    start.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    await waitUntil("every service healthy", async () => (await Promise.all(SERVICES.map((s) => get(ports[s], "/healthz")))).every((t) => t !== undefined), 120_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\nnpm start said:\n${out.slice(-4000)}`);
    });
    // A command through Slack, so that the labelled series of commands, results and vCenter calls have samples.
    const slash = spawnSync(process.execPath, [join(root, "scripts/slack.mjs"), "power off DC0_H0_VM0", "--wait", "60"], { env: { PATH: process.env.PATH, IAAS_RUN_DIR: runDir }, encoding: "utf8", timeout: 90_000 });
    expect(slash.stdout, slash.stderr).toMatch(/powered off/i);
    for (const s of SERVICES) {
      const text = await get(ports[s], "/metrics");
      if (text === undefined) throw new Error(`${s}: no /metrics on port ${ports[s]}`);
      scrapes[s] = text;
    }
  }, 240_000);

  afterAll(async () => {
    if (start && start.exitCode === null) {
      const exited = new Promise((r) => start!.once("exit", r));
      start.kill("SIGINT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
      if (start.exitCode === null) start.kill("SIGKILL");
    }
    if (runDir) await rm(runDir, { recursive: true, force: true });
    if (otlp) await new Promise((r) => otlp!.close(r));
  }, 60_000);

  it("with OTEL_EXPORTER_OTLP_ENDPOINT set, the Slack command's spans arrive over OTLP/JSON as one trace across gateway, power and vcenter-proxy", async () => {
    const trace = await waitUntil("the power-off's spans from gateway, power and vcenter-proxy", () => {
      const soap = exportedSpans.find((s) => s.name === "PowerOffVM_Task");
      if (!soap) return undefined;
      const same = exportedSpans.filter((s) => s.traceId === soap.traceId);
      return ["gateway", "power", "vcenter-proxy"].every((svc) => same.some((s) => s.service === svc)) && same.some((s) => s.name === "process iaas.cmd.power.off") && same;
    }, 30_000);
    expect(otlpRequests.every((r) => r.path === "/v1/traces" && r.contentType.startsWith("application/json"))).toBe(true);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    // From the SOAP call up its parents to the gateway's request: the services on the way, in order.
    const chain: OtlpSpan[] = [];
    for (let s = trace.find((x) => x.name === "PowerOffVM_Task"); s; s = byId.get(s.parentSpanId)) chain.unshift(s);
    expect(chain.map((s) => `${s.service}: ${s.name}`)).toEqual([
      "gateway: slack.command",
      "gateway: publish iaas.cmd.power.off",
      "power: process iaas.cmd.power.off",
      "power: send vcenter.vm.power",
      "vcenter-proxy: process vcenter.vm.power",
      "vcenter-proxy: PowerOffVM_Task",
    ]);
    expect(chain[0]!.parentSpanId).toBe("");
  });

  it.each(SERVICES)("%s: /metrics passes promtool check metrics", (service) => {
    const text = scrapes[service];
    expect(text).toContain(`service="${service}"`);
    const r = promtool(["check", "metrics"], text);
    expect(r.out.trim(), `${service}: promtool check metrics`).toBe("");
    expect(r.status).toBe(0);
  });

  it("every counter ends in _total, and a count that only grows is a counter", () => {
    for (const service of SERVICES) {
      for (const m of scrapes[service].matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        const [, name, type] = m as unknown as [string, string, string];
        expect(name.endsWith("_total"), `${service}: ${name} is a ${type}`).toBe(type === "counter");
      }
    }
    expect(scrapes["vcenter-proxy"]).toContain("# TYPE iaas_vcenter_index_builds_total counter");
  });

  it("the vCenter's session and reachability are exported per vCenter", () => {
    const t = scrapes["vcenter-proxy"];
    expect(t).toMatch(/^iaas_vcenter_up\{[^}]*vcenter="default"[^}]*\} 1$/m);
    expect(t).toMatch(/^iaas_vcenter_logins_total\{[^}]*vcenter="default"[^}]*\} [1-9]/m);
    expect(t).toMatch(/^iaas_vcenter_soap_calls_total\{[^}]*vcenter="default"[^}]*\} [1-9]/m);
    expect(t).toMatch(/^iaas_vcenter_index_builds_total\{[^}]*vcenter="default"[^}]*\} 1$/m);
  });

  it("the alert rules pass promtool check rules", async () => {
    const files = await ruleFiles();
    expect(files.length).toBeGreaterThan(0);
    const r = promtool(["check", "rules", ...files]);
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.status, r.out).toBe(0);
  });

  it("the alert rules fire as their unit tests say (promtool test rules)", async () => {
    const tests = (await readdir(rulesDir)).filter((f) => f.endsWith(".test.yaml")).map((f) => join(rulesDir, f));
    expect(tests.length).toBeGreaterThan(0);
    const r = promtool(["test", "rules", ...tests]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it("every metric a rule or a dashboard panel names is exported by a service", async () => {
    const known = new Set(SERVICES.flatMap((s) => [...exported(scrapes[s])]));
    // Prometheus's own series for a scrape target, and the ALERTS series of the rules.
    for (const n of ["up", "ALERTS", "ALERTS_FOR_STATE"]) known.add(n);
    const used: { where: string; name: string }[] = [];
    for (const file of await ruleFiles()) {
      const doc = parseYaml(await readFile(file, "utf8")) as { groups: RuleGroup[] };
      const records = new Set(doc.groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
      for (const g of doc.groups) {
        for (const r of g.rules) {
          for (const name of metricNamesOf(r.expr)) if (!records.has(name)) used.push({ where: `${file.slice(root.length)}: ${r.alert ?? r.record}`, name });
        }
      }
    }
    const boards = await dashboards();
    expect(boards.length).toBeGreaterThan(0);
    for (const { file, json } of boards) {
      for (const p of allPanels(json.panels)) {
        for (const t of p.targets ?? []) for (const name of metricNamesOf(t.expr ?? "")) used.push({ where: `${file}: panel "${p.title}"`, name });
      }
    }
    expect(used.length).toBeGreaterThan(20);
    const unknown = used.filter((u) => !known.has(u.name)).map((u) => `${u.where}: ${u.name}`);
    expect(unknown).toEqual([]);
  });

  it("the dashboard loads: unique panel ids, a query on every graph, the Prometheus data source as a variable", async () => {
    for (const { file, json } of await dashboards()) {
      expect(json.title, file).toBeTruthy();
      expect(json.uid, file).toMatch(/^[\w-]{1,40}$/);
      const panels = allPanels(json.panels);
      const ids = panels.map((p) => p.id);
      expect(new Set(ids).size, `${file}: panel ids`).toBe(ids.length);
      for (const p of panels) {
        expect(typeof p.id, `${file}: panel "${p.title}" id`).toBe("number");
        if (p.type === "row") continue;
        expect(p.targets?.length, `${file}: panel "${p.title}" has no query`).toBeGreaterThan(0);
        for (const t of p.targets ?? []) expect(t.expr, `${file}: panel "${p.title}"`).toBeTruthy();
      }
      expect(JSON.stringify(json)).toContain("${datasource}");
    }
  });
});
