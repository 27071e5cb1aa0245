import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { spawn, stopProcess, killProcess } from "./process.js";

export interface NatsServerOptions {
  /** Extra nats-server arguments, e.g. `["-c", "/path/to/conf"]`. */
  args?: string[];
  /** Reuse this JetStream store directory (to restart a server with its data). */
  storeDir?: string;
  /** Fixed port (to restart on the same URL); default: a free one picked by the server. */
  port?: number;
  /** Own process group, so a terminal's Ctrl-C reaches only the parent (npm start stops it in order). */
  detached?: boolean;
}

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Process id of the running server. */
  readonly pid: number | undefined;
  /** Graceful stop; the store directory is kept until `dispose()`. */
  stop(): Promise<void>;
  /** SIGKILL, for fault tests. */
  kill(): Promise<void>;
  /** Start again on the same port with the same store. */
  restart(): Promise<void>;
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a private nats-server with JetStream on a random loopback port, the way nats.js's own
 * tests do. Never the server that may already run on 4222. The Debian package's binary is used:
 * the machines that run the tests have no Docker engine (the `docker` CLI is only a client).
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), "iaas-nats-")));
  let port = opts.port ?? -1;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const portsDir = await mkdtemp(join(tmpdir(), "iaas-nats-ports-"));
    const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir, "--ports_file_dir", portsDir, ...(opts.args ?? [])];
    const proc = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", args, { stdio: ["ignore", "ignore", "pipe"], detached: opts.detached ?? false });
    child = proc;
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const deadline = Date.now() + 15_000;
    try {
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}: ${stderr}`);
        const files = await readdir(portsDir).catch(() => [] as string[]);
        const file = files.find((f) => f.endsWith(".ports"));
        if (file) {
          // The server creates the file before it writes it: an empty or partial read means "not yet".
          const text = await readFile(join(portsDir, file), "utf8");
          let ports: { nats?: string[] } | undefined;
          try {
            ports = JSON.parse(text) as { nats?: string[] };
          } catch {
            ports = undefined;
          }
          if (ports?.nats?.[0]) {
            port = Number(new URL(ports.nats[0]).port);
            return;
          }
        }
        if (Date.now() > deadline) throw new Error(`nats-server did not start: ${stderr}`);
        await sleep(25);
      }
    } finally {
      await rm(portsDir, { recursive: true, force: true });
    }
  };

  await launch();
  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
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
      if (child) await stopProcess(child);
      await launch();
    },
    dispose: async () => {
      if (child) await stopProcess(child);
      if (!opts.storeDir) await rm(storeDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => server.dispose(),
  };
  return server;
}
