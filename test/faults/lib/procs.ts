/**
 * Services as real child processes (`node services/<name>/dist/main.js`), so that a kill -9 in a
 * fault test is a real crash: no `finally`, no drain, no ack. Each process is started from the
 * environment its main.ts reads, exactly as scripts/start.mjs and deploy/ start them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type ServiceName = "gateway" | "power" | "vcenter-proxy" | "vm-lifecycle" | "veba-bridge" | "remediation" | "lease-keeper";

/** The compiled entry point of a service; `pnpm tsc -b` (npm run build:ts) writes it. */
export function mainOf(name: ServiceName): string {
  return join(ROOT, "services", name, "dist", "main.js");
}

/** Whether a service exists in this checkout and is built (vm-lifecycle and remediation may not be yet). */
export function isBuilt(name: ServiceName): boolean {
  return existsSync(join(ROOT, "services", name, "src", "main.ts")) && existsSync(mainOf(name));
}

export interface LogLine {
  at: number;
  raw: string;
  json?: Record<string, unknown>;
}

export interface ReadyInfo {
  pid: number;
  /** The gateway's Slack port, when it is the gateway. */
  slackPort?: number;
  /** The bridge's /events URL, when it is the bridge. */
  eventsUrl?: string;
  healthUrl?: string;
}

/**
 * One service instance: started, killed and restarted with the same environment. Logs go to a
 * file per instance (`<logDir>/<label>.log`, appended across restarts) and a ring buffer that a
 * failing test prints.
 */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private expectedExit = false;
  private readonly ring: LogLine[] = [];
  private file: WriteStream | undefined;
  /** Exits we did not cause: a crash. Each entry says how it ended. */
  readonly crashes: string[] = [];
  starts = 0;
  kills = 0;
  ready: ReadyInfo | undefined;
  /**
   * Restart on a crash, as a supervisor (Kubernetes, compose `restart: unless-stopped`) would: the
   * crash is still recorded, and the scenario can go on to check what the crash cost. A start
   * that fails counts as a crash too (Kubernetes' CrashLoopBackOff); at most eight restarts per
   * instance, 0.5 s doubling to 4 s apart.
   */
  supervise = false;
  private supervisedRestarts = 0;
  private disposed = false;

  constructor(
    readonly name: ServiceName,
    readonly label: string,
    public env: Record<string, string>,
    private readonly logDir: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it logged that it is ready (its health server is up). */
  async start(timeoutMs = 30_000): Promise<ReadyInfo> {
    if (this.running) throw new Error(`${this.label} is already running`);
    await mkdir(this.logDir, { recursive: true });
    this.file ??= createWriteStream(join(this.logDir, `${this.label}.log`), { flags: "a" });
    this.expectedExit = false;
    this.ready = undefined;
    this.starts += 1;
    const child = spawn(process.execPath, [mainOf(this.name)], {
      cwd: ROOT,
      // Only what we pass: no NATS_URL or VCENTER_URL leaking in from the developer's shell.
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", LOG_LEVEL: "info", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const gen = this.starts;
    let resolveReady: (r: ReadyInfo) => void = () => undefined;
    const readyP = new Promise<ReadyInfo>((resolve) => (resolveReady = resolve));
    const partial: ReadyInfo = { pid: child.pid ?? 0 };
    const onLine = (raw: string) => {
      const line: LogLine = { at: Date.now(), raw };
      try {
        line.json = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        // not JSON (a config error line, a Node warning)
      }
      this.ring.push(line);
      if (this.ring.length > 400) this.ring.shift();
      this.file?.write(`${raw}\n`);
      const j = line.json;
      if (!j) return;
      if (typeof j.slackPort === "number") partial.slackPort = j.slackPort;
      if (typeof j.url === "string" && j.url.endsWith("/events")) partial.eventsUrl = j.url;
      // Every main.ts starts its health server last and logs where it listens: that is "ready".
      if (typeof j.health === "string") partial.healthUrl = j.health;
      if (typeof j.healthPort === "number") partial.healthUrl = `http://127.0.0.1:${j.healthPort}`;
      if (partial.healthUrl && (this.name !== "gateway" || partial.slackPort !== undefined)) resolveReady({ ...partial });
    };
    for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s }).on("line", onLine);
    const exited = once(child, "exit").then(([code, signal]) => {
      if (!this.expectedExit && gen === this.starts) {
        this.crashes.push(`${this.label} exited (${signal ?? code}) without being asked: ${this.lastError()}`);
        if (this.supervise && this.supervisedRestarts < 8) {
          const wait = Math.min(4000, 500 * 2 ** this.supervisedRestarts);
          this.supervisedRestarts += 1;
          setTimeout(() => {
            if (!this.disposed && !this.running) void this.start().catch(() => undefined);
          }, wait);
        }
      }
      return { code, signal };
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      this.ready = await Promise.race([
        readyP,
        exited.then(({ code, signal }) => {
          throw new Error(`${this.label} exited (${signal ?? code}) before it was ready:\n${this.tail(30)}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.label} was not ready within ${timeoutMs} ms:\n${this.tail(30)}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return this.ready;
  }

  /** SIGKILL: a crash, with nothing flushed, drained or acked. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    this.expectedExit = true;
    this.kills += 1;
    const exited = once(c, "exit");
    c.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM (the service drains and exits), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    this.expectedExit = true;
    const exited = once(c, "exit");
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(t);
  }

  async restart(): Promise<ReadyInfo> {
    await this.kill();
    return this.start();
  }

  /** The first line of the last non-JSON output (an uncaught error's message), for crash reports. */
  private lastError(): string {
    const raw = this.ring
      .filter((l) => !l.json)
      .slice(-60)
      .map((l) => l.raw.trim());
    const line = raw.find((l) => /^[A-Za-z]+(Error|Exception)?: /.test(l) && !/^at /.test(l));
    return line ? line.slice(0, 300) : "(no error output)";
  }

  /** The last `n` log lines, for failure messages. */
  tail(n = 40): string {
    return this.ring
      .slice(-n)
      .map((l) => `  [${this.label}] ${l.raw.slice(0, 600)}`)
      .join("\n");
  }

  /** Log lines (of the current and earlier runs still in the ring) matching a predicate. */
  lines(pred: (j: Record<string, unknown>) => boolean): LogLine[] {
    return this.ring.filter((l) => l.json && pred(l.json));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop(5_000);
    await new Promise<void>((resolve) => (this.file ? this.file.end(() => resolve()) : resolve()));
    this.file = undefined;
  }
}

/** A set of service instances, disposed together. */
export class ProcessGroup {
  readonly all: ServiceProcess[] = [];

  constructor(private readonly logDir: string) {}

  add(name: ServiceName, env: Record<string, string>, label: string = name): ServiceProcess {
    const p = new ServiceProcess(name, label, env, this.logDir);
    this.all.push(p);
    return p;
  }

  get(label: string): ServiceProcess {
    const p = this.all.find((x) => x.label === label);
    if (!p) throw new Error(`no service ${label}`);
    return p;
  }

  crashes(): string[] {
    return this.all.flatMap((p) => p.crashes);
  }

  tails(n = 25): string {
    return this.all.map((p) => p.tail(n)).join("\n");
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all.map((p) => p.dispose()));
  }
}
