import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { spawn, stopProcess, killProcess } from "./process.js";

export interface VcsimOptions {
  /** Expire idle sessions after this many seconds (the simulator never does otherwise). */
  sessionIdleTimeoutSeconds?: number;
  /** Per-method delays in ms, e.g. `{ PowerOnVM_Task: 500 }`. */
  methodDelayMs?: Record<string, number>;
  /** Number of datastores (LocalDS_0..N-1); default 3. */
  datastores?: number;
  /** Capacity and free space in GiB per datastore name. */
  datastoreSpaceGiB?: Record<string, { capacity: number; free: number }>;
  /**
   * VMs per standalone host and per cluster resource pool (`-vm`): the inventory has one of each,
   * so the simulator holds twice this many generated VMs; default 2 (4 VMs). Large inventories
   * want `demo: false` (the demo step reconfigures every VM).
   */
  vmsPerPool?: number;
  /** The demo inventory (a template, tools running, hot-add on every other VM); default true. */
  demo?: boolean;
  username?: string;
  password?: string;
  /** Fixed listen port (to restart on the same URL). */
  port?: number;
  /** Own process group, so a terminal's Ctrl-C reaches only the parent (npm start stops it in order). */
  detached?: boolean;
}

export interface Vcsim {
  /** SOAP endpoint, e.g. `http://127.0.0.1:40123/sdk`. */
  url: string;
  username: string;
  password: string;
  /** Process id of the running simulator. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** Start a fresh simulator on the same port (its inventory is new). */
  restart(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the simulator binary that `scripts/setup.sh` builds from Debian's govmomi source. */
export function vcsimBinary(): string {
  if (process.env.VCSIM_BIN) return process.env.VCSIM_BIN;
  const bin = fileURLToPath(new URL("../../../.cache/bin/vcsim", import.meta.url));
  if (!existsSync(bin)) throw new Error(`vCenter simulator not built at ${bin}: run 'bash scripts/setup.sh'`);
  return bin;
}

export function vcsimArgs(opts: VcsimOptions, port = 0): string[] {
  const args = [`-listen=127.0.0.1:${port}`];
  if (opts.sessionIdleTimeoutSeconds) args.push(`-session-idle-timeout=${opts.sessionIdleTimeoutSeconds}s`);
  if (opts.methodDelayMs) {
    args.push(`-method-delay=${Object.entries(opts.methodDelayMs).map(([m, ms]) => `${m}:${ms}`).join(",")}`);
  }
  if (opts.datastores !== undefined) args.push(`-datastores=${opts.datastores}`);
  if (opts.datastoreSpaceGiB) {
    args.push(
      `-datastore-space=${Object.entries(opts.datastoreSpaceGiB).map(([n, s]) => `${n}=${s.capacity}:${s.free}`).join(",")}`,
    );
  }
  if (opts.vmsPerPool !== undefined) args.push(`-vm=${opts.vmsPerPool}`);
  if (opts.demo === false) args.push("-demo=false");
  if (opts.username) args.push(`-username=${opts.username}`);
  if (opts.password) args.push(`-password=${opts.password}`);
  return args;
}

/** Starts the govmomi vCenter simulator on a random loopback port; resolves once it serves. */
export async function startVcsim(opts: VcsimOptions = {}): Promise<Vcsim> {
  let child: ChildProcess | undefined;
  let info = { url: "", username: "", password: "" };

  // A 10,000-VM inventory takes the simulator about 20 s to build on two busy cores.
  const startS = 30 + Math.ceil(((opts.vmsPerPool ?? 2) * 2) / 200);
  const launch = async (port: number): Promise<void> => {
    const proc = spawn(vcsimBinary(), vcsimArgs(opts, port), { stdio: ["ignore", "pipe", "pipe"], detached: opts.detached ?? false });
    child = proc;
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const lines = createInterface({ input: proc.stdout! });
    info = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vcsim did not start within ${startS} s: ${stderr}`)), startS * 1000);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`vcsim exited with ${code}: ${stderr}`));
      });
      lines.once("line", (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as typeof info);
        } catch {
          reject(new Error(`vcsim printed an unexpected line: ${line}`));
        }
      });
    });
    lines.close();
  };

  await launch(opts.port ?? 0);
  const sim: Vcsim = {
    get url() {
      return info.url;
    },
    get username() {
      return info.username;
    },
    get password() {
      return info.password;
    },
    get pid() {
      return child?.pid;
    },
    stop: async () => {
      if (child) await stopProcess(child);
    },
    kill: async () => {
      if (child) await killProcess(child);
    },
    restart: async () => {
      const port = Number(new URL(info.url).port);
      if (child) await stopProcess(child);
      await launch(port);
    },
    [Symbol.asyncDispose]: () => sim.stop(),
  };
  return sim;
}
