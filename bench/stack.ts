import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { stopProcess } from "@iaas/testkit";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A process of ours (a built service or the baseline server), its output kept short. */
export interface Proc {
  name: string;
  child: ChildProcess;
  /** The last lines it printed (for error messages). */
  tail: string[];
  /** Resolves with the first JSON line that satisfies `pred`. */
  waitForJson(what: string, pred: (o: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
// If the run dies some other way, do not leave services behind.
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Spawns `node <args>` with exactly `env` (plus PATH) and keeps reading its output so its pipes never fill. */
export function startProc(name: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const tail: string[] = [];
  const listeners = new Set<(o: Record<string, unknown>) => void>();
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      if (listeners.size === 0) return;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        return;
      }
      if (o && typeof o === "object") for (const l of [...listeners]) l(o as Record<string, unknown>);
    });
  }
  return {
    name,
    child,
    tail,
    waitForJson: (what, pred, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const done = (err: Error | undefined, o?: Record<string, unknown>) => {
          clearTimeout(timer);
          listeners.delete(listener);
          child.off("exit", onExit);
          if (err) reject(err);
          else resolve(o!);
        };
        const listener = (o: Record<string, unknown>) => {
          if (pred(o)) done(undefined, o);
        };
        const onExit = (code: number | null) => done(new Error(`${name} exited (${code}) before ${what}:\n${tail.join("\n")}`));
        const timer = setTimeout(() => done(new Error(`${name}: no ${what} within ${timeoutMs} ms:\n${tail.join("\n")}`)), timeoutMs);
        listeners.add(listener);
        child.once("exit", onExit);
      }),
    stop: () => stopProcess(child, 10_000),
  };
}

/** A built service, `services/<name>/dist/main.js`, as scripts/start.mjs runs it. */
export function startService(name: string, env: Record<string, string>): Proc {
  // With the V8 heap limits the services run with everywhere (deploy/node-options).
  const nodeOptions = [readFileSync(join(ROOT, "deploy", "node-options"), "utf8").trim(), env.NODE_OPTIONS ?? ""].join(" ").trim();
  return startProc(name, [join(ROOT, "services", name, "dist", "main.js")], { ...env, NODE_OPTIONS: nodeOptions });
}

/** Resident set size of a process in kB (VmRSS in /proc/<pid>/status), or undefined once it is gone. */
export function rssKb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples the RSS of named processes every `everyMs`, filed under the current phase; keeps the
 * maximum per process and phase. Phases are set by the run ("idle", "ack 200/s", ...).
 */
export class RssSampler {
  private phase = "idle";
  readonly peaks = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly pids: () => Record<string, number | undefined>) {}

  start(everyMs = 200): void {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  setPhase(phase: string): void {
    this.sample();
    this.phase = phase;
    this.sample();
  }

  sample(): void {
    for (const [name, pid] of Object.entries(this.pids())) {
      const kb = rssKb(pid);
      if (kb === undefined) continue;
      const byPhase = this.peaks.get(name) ?? new Map<string, number>();
      byPhase.set(this.phase, Math.max(byPhase.get(this.phase) ?? 0, kb));
      this.peaks.set(name, byPhase);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

interface CpuSnap {
  /** Clock ticks of all CPUs together, and the busy part of them. */
  total: number;
  busy: number;
  /** Busy ticks of the benchmark's own processes, by name. */
  ours: Record<string, number>;
}

export function procTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime: fields 14 and 15 of proc(5), counted from `state` (field 3).
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/**
 * CPU used by processes that are not the benchmark's, from /proc/stat minus our own processes'
 * ticks: the machine is shared, and a figure taken while something else kept a core busy says so.
 */
export class CpuMeter {
  private readonly ncpu: number;
  constructor(private readonly pids: () => Record<string, number | undefined>) {
    this.ncpu = (readFileSync("/proc/stat", "utf8").match(/^cpu\d+ /gm) ?? [""]).length;
  }

  snap(): CpuSnap {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = line.reduce((a, b) => a + b, 0);
    const busy = total - line[3]! - line[4]!;
    const ours: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids())) if (pid !== undefined) ours[name] = procTicks(pid);
    return { total, busy, ours };
  }

  /**
   * Average cores used between two snapshots: by everything else, by the benchmark's processes, and
   * by each of them. A process that started in between counts from zero.
   */
  between(a: CpuSnap, b: CpuSnap): { others: number; ours: number; byProcess: Record<string, number> } {
    const wall = (b.total - a.total) / this.ncpu;
    const byProcess: Record<string, number> = {};
    if (wall <= 0) return { others: 0, ours: 0, byProcess };
    let ours = 0;
    for (const [name, ticks] of Object.entries(b.ours)) {
      const used = (ticks - (a.ours[name] ?? 0)) / wall;
      byProcess[name] = used;
      ours += used;
    }
    return { others: Math.max(0, (b.busy - a.busy) / wall - ours), ours, byProcess };
  }
}

/** The health server a service announces in its log (the first line with a `health` URL). */
export async function healthOf(p: Proc, timeoutMs?: number): Promise<string> {
  const o = await p.waitForJson("its health URL", (l) => typeof l.health === "string", timeoutMs);
  return String(o.health);
}

/** Polls `/readyz` until it answers 200 (bounded). */
export async function untilReady(health: string, timeoutMs = 30_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${health}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (performance.now() > end) throw new Error(`${health}/readyz still answers ${status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
