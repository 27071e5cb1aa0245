/**
 * `npm run bench:soap`: `@iaas/vsphere`'s VimClient against a minimal raw SOAP client written here
 * (node:http with a keep-alive agent, envelopes built by hand, answers read with regular
 * expressions), on one simulator, interleaved round by round so both see the same machine. Measures
 *   - a power operation and its task read (PowerOffVM_Task / PowerOnVM_Task, then the task's state),
 *   - what vcenter-proxy reads for `/iaas info` (Vcenter.info in this process, with the live index
 *     as the proxy runs it), against one raw read of the same paths;
 * per call: latency p50/p95, SOAP round trips, and this process's CPU (process.cpuUsage).
 *
 *   pnpm run -s build:ts && npx tsx bench/soap.ts [--rounds 300] [--json out.json]
 *   node --cpu-prof --import tsx bench/soap.ts --only vim     (profile the client alone)
 */
import { Agent, request } from "node:http";
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createLogger } from "@iaas/runtime";
import { startVcsim } from "@iaas/testkit";
import { Vcenter } from "@iaas/vcenter-proxy";
import { TASK_STATE_PATHS, VM_SUMMARY_PATHS, VimClient, VmProps, type MoRef } from "@iaas/vsphere";
import { machineInfo } from "./report.js";
import { ms, ratio, summarize, type Summary } from "./stats.js";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "300" },
    warmup: { type: "string", default: "30" },
    json: { type: "string" },
    /** `vim` or `raw`: run one side only (for a CPU profile of it). */
    only: { type: "string" },
  },
});
const ROUNDS = Number(args.rounds);
const WARMUP = Number(args.warmup);
const say = (msg: string) => process.stderr.write(`[bench:soap] ${msg}\n`);
setTimeout(() => {
  say("still running after 10 minutes; giving up");
  process.exit(2);
}, 10 * 60_000).unref();

// ---------------------------------------------------------------- the raw client

/** What vcenter-proxy reads of a VM for `info` (its VM_PATHS). */
const VM_PATHS = [...VM_SUMMARY_PATHS, VmProps.extraConfig, VmProps.customValue, VmProps.hotPlugMemoryLimit, VmProps.hotPlugMemoryIncrementSize];

const ENV_OPEN =
  '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>';
const ENV_CLOSE = "</soapenv:Body></soapenv:Envelope>";

/** The floor: one keep-alive socket, a hand-built envelope per call, no schema, no decoding. */
class RawSoap {
  calls = 0;
  private cookie: string | undefined;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly url: URL;
  pc = "";
  sessionManager = "";

  constructor(url: string) {
    this.url = new URL(url);
  }

  post(body: string): Promise<string> {
    this.calls++;
    const payload = ENV_OPEN + body + ENV_CLOSE;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {
        "Content-Type": "text/xml; charset=utf-8",
        SOAPAction: '"urn:vim25/6.5"',
        "Content-Length": Buffer.byteLength(payload),
      };
      if (this.cookie) headers.Cookie = `vmware_soap_session=${this.cookie}`;
      const req = request({ host: this.url.hostname, port: this.url.port, path: this.url.pathname, method: "POST", agent: this.agent, headers, timeout: 15_000 }, (res) => {
        for (const c of res.headers["set-cookie"] ?? []) {
          const m = /^vmware_soap_session=([^;]*)/.exec(c);
          if (m) this.cookie = m[1];
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (text.includes("<soapenv:Fault>") || text.includes(":Fault>")) reject(new Error(`SOAP fault: ${/<faultstring>([^<]*)/.exec(text)?.[1] ?? text.slice(0, 200)}`));
          else resolve(text);
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(payload);
    });
  }

  async login(user: string, password: string): Promise<void> {
    const sc = await this.post('<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>');
    this.pc = /<propertyCollector type="PropertyCollector">([^<]+)</.exec(sc)![1]!;
    this.sessionManager = /<sessionManager type="SessionManager">([^<]+)</.exec(sc)![1]!;
    await this.post(
      `<Login xmlns="urn:vim25"><_this type="SessionManager">${this.sessionManager}</_this><userName>${user}</userName><password>${password}</password></Login>`,
    );
  }

  /** A power method and one read of its task's state (it is over by then on the simulator). */
  async power(vm: string, method: "PowerOnVM_Task" | "PowerOffVM_Task"): Promise<void> {
    const r = await this.post(`<${method} xmlns="urn:vim25"><_this type="VirtualMachine">${vm}</_this></${method}>`);
    const task = /<returnval type="Task">([^<]+)</.exec(r)?.[1];
    if (!task) throw new Error(`${method}: no task in ${r.slice(0, 200)}`);
    const s = await this.retrieve("Task", task, TASK_STATE_PATHS);
    const state = /<name>info\.state<\/name><val[^>]*>([^<]*)</.exec(s)?.[1];
    if (state !== "success") throw new Error(`${method}: task ${task} is ${state ?? "unreadable"}`);
  }

  retrieve(type: string, value: string, paths: readonly string[]): Promise<string> {
    return this.post(
      `<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">${this.pc}</_this><specSet>` +
        `<propSet><type>${type}</type>${paths.map((p) => `<pathSet>${p}</pathSet>`).join("")}</propSet>` +
        `<objectSet><obj type="${type}">${value}</obj><skip>false</skip></objectSet></specSet><options></options></RetrievePropertiesEx>`,
    );
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------- measuring

/** Latencies, SOAP calls and this process's CPU of one kind of operation, accumulated over the rounds. */
class Series {
  readonly lat: number[] = [];
  cpuUs = 0;
  calls = 0;
  async time(calls: () => number, fn: () => Promise<void>): Promise<void> {
    const c0 = calls();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    this.lat.push(performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    this.cpuUs += cpu.user + cpu.system;
    this.calls += calls() - c0;
  }
  result(): { latency: Summary; cpuMsPerOp: number; callsPerOp: number } {
    const n = Math.max(1, this.lat.length);
    return { latency: summarize(this.lat), cpuMsPerOp: this.cpuUs / 1000 / n, callsPerOp: this.calls / n };
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const sim = await startVcsim();
  process.on("exit", () => {
    try {
      if (sim.pid !== undefined) process.kill(sim.pid, "SIGKILL");
    } catch {
      // already stopped
    }
  });
  try {
    const vim = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-bench-soap", keepAliveMs: 0 });
    const raw = new RawSoap(sim.url);
    await raw.login(sim.username, sim.password);
    const find = async (path: string): Promise<MoRef> => (await vim.searchIndex.findByInventoryPath(path))!;
    // One VM per client, so neither waits on the other's VM; both start powered on (demo inventory).
    const vimVm = await find("/DC0/vm/DC0_H0_VM0");
    const rawVm = await find("/DC0/vm/DC0_H0_VM1");
    for (const ref of [vimVm, rawVm]) {
      const [r] = await vim.retrieve([ref], ["runtime.powerState"]);
      if (r?.props["runtime.powerState"] !== "poweredOn") await (await vim.vm(ref).powerOn()).wait();
    }
    const vimPower = new Series();
    const rawPower = new Series();
    const vimCalls = () => vim.stats.calls;
    const rawCalls = () => raw.calls;
    const vimOp = async (on: boolean) => {
      const o = vim.vm(vimVm);
      await (await (on ? o.powerOn() : o.powerOff())).wait({ timeoutMs: 15_000 });
    };
    const rawOp = (on: boolean) => raw.power(rawVm.value, on ? "PowerOnVM_Task" : "PowerOffVM_Task");

    say(`power: ${WARMUP} warm-up rounds, then ${ROUNDS} interleaved rounds (off + on for each client)`);
    for (let i = 0; i < WARMUP; i++) {
      for (const on of [false, true]) {
        if (args.only !== "raw") await vimOp(on);
        if (args.only !== "vim") await rawOp(on);
      }
    }
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which client goes first, so neither always follows the other's work.
      const order = i % 2 === 0 ? (["vim", "raw"] as const) : (["raw", "vim"] as const);
      for (const on of [false, true]) {
        for (const who of order) {
          if (args.only !== undefined && args.only !== who) continue;
          if (who === "vim") await vimPower.time(vimCalls, () => vimOp(on));
          else await rawPower.time(rawCalls, () => rawOp(on));
        }
      }
    }

    // `/iaas info` as vcenter-proxy answers it, on a session of its own with the live index.
    const silent = createLogger("bench", "silent");
    const proxyClient = await VimClient.connect({ url: sim.url, username: sim.username, password: sim.password, userAgent: "iaas-bench-soap-proxy", keepAliveMs: 0 });
    const vc = new Vcenter("bench", proxyClient, silent, { liveIndex: true });
    await vc.index!.start();
    await vc.fields();
    const infoVm = "DC0_H0_VM0";
    const vimInfo = new Series();
    const rawInfo = new Series();
    const infoRounds = Math.max(50, Math.round(ROUNDS / 2));
    say(`info: ${WARMUP} warm-up, then ${infoRounds} interleaved rounds`);
    for (let i = 0; i < WARMUP; i++) {
      await vc.infoOf(infoVm);
      await raw.retrieve("VirtualMachine", vimVm.value, VM_PATHS);
    }
    let shown: unknown;
    for (let i = 0; i < infoRounds; i++) {
      await vimInfo.time(
        () => proxyClient.stats.calls,
        async () => {
          shown = await vc.infoOf(infoVm);
        },
      );
      await rawInfo.time(rawCalls, async () => {
        await raw.retrieve("VirtualMachine", vimVm.value, VM_PATHS);
      });
    }
    await vc.close();
    await proxyClient.logout();
    await vim.logout();
    raw.close();

    const result = {
      machine: await machineInfo(),
      rounds: ROUNDS,
      seconds: Math.round((performance.now() - started) / 1000),
      power: { vim: vimPower.result(), raw: rawPower.result() },
      info: { vim: vimInfo.result(), raw: rawInfo.result(), shown },
    };
    if (args.json) await writeFile(args.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(render(result));
  } finally {
    await sim.stop();
  }
}

type Side = ReturnType<Series["result"]>;

function render(r: { machine: { date: string; commit: string; cpu: string; nproc: string; node: string }; rounds: number; seconds: number; power: { vim: Side; raw: Side }; info: { vim: Side; raw: Side } }): string {
  const row = (name: string, s: Side, floor: Side) =>
    `| ${name} | ${ms(s.latency.p50)} / ${ms(s.latency.p95)} | ${ratio(s.latency.p50, floor.latency.p50)} | ${s.callsPerOp.toFixed(1)} | ${s.cpuMsPerOp.toFixed(2)} | ${ratio(s.cpuMsPerOp, floor.cpuMsPerOp)} |`;
  return [
    `${r.machine.date}, ${r.machine.cpu} (${r.machine.nproc} cores), Node ${r.machine.node}, commit ${r.machine.commit}; ${r.rounds} rounds, ${r.seconds} s`,
    "",
    "| operation | p50 / p95 ms | p50 vs raw | SOAP calls | CPU ms per op (this process) | CPU vs raw |",
    "|---|---|---|---|---|---|",
    row("power op + task read, raw node:http", r.power.raw, r.power.raw),
    row("power op + task read, VimClient", r.power.vim, r.power.raw),
    row("info paths, one raw read", r.info.raw, r.info.raw),
    row("`info` (Vcenter.infoOf, live index)", r.info.vim, r.info.raw),
    "",
  ].join("\n");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
