import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { VimClient, VimEvent } from "@iaas/vsphere";
import { stopProcess, waitUntil } from "@iaas/testkit";
import { expect } from "vitest";
import { IaasError, ServiceNames } from "@iaas/contracts";
import { addMicroService } from "@iaas/runtime";
import { PROXY_DESCRIPTION, buildProxy, type ProxyDeps } from "../src/build.js";

/** The built proxy: process tests run what `npm start` and the container run, not the TS source. */
export const PROXY_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

export function requireBuiltProxy(): void {
  if (!existsSync(PROXY_MAIN)) throw new Error(`${PROXY_MAIN} is missing: run 'pnpm tsc -b' first (npm test does)`);
}

export interface ProxyProcess {
  child: ChildProcess;
  /** Every stdout and stderr line so far, in order. */
  lines: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Waits for a line matching `pred`; returns it. */
  waitForLine(what: string, pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Runs services/vcenter-proxy/dist/main.js as a child process with exactly `env` (plus PATH),
 * so nothing from the test runner's environment leaks in.
 */
export function runProxy(env: Record<string, string>): ProxyProcess {
  requireBuiltProxy();
  const child = spawn(process.execPath, [PROXY_MAIN], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s }).on("line", (l) => lines.push(l));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitForLine: (what, pred, timeoutMs = 20_000) =>
      waitUntil(
        `${what} (proxy output so far: ${lines.join("\n").slice(-2000)})`,
        () => {
          if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}`);
          return lines.find(pred);
        },
        timeoutMs,
      ),
    stop: () => stopProcess(child),
  };
}

/** A pino line as an object, or undefined for anything else. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface CountingRelay {
  /** Endpoint to give the proxy instead of the simulator's, e.g. `http://127.0.0.1:4711/sdk`. */
  url: string;
  /** SOAP requests relayed, and how many of them were Login calls. */
  counts: { requests: number; logins: number };
  close(): Promise<void>;
}

/**
 * A transparent loopback HTTP relay in front of the simulator that counts Login requests. The
 * simulator posts no event for a refused Login, so this is how a test sees login attempts that
 * failed. Bodies are forwarded byte for byte; the simulator still does all the answering.
 */
export async function startCountingRelay(target: string): Promise<CountingRelay> {
  const t = new URL(target);
  const counts = { requests: 0, logins: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      counts.requests++;
      if (/<Login[\s>]/.test(body.toString("utf8"))) counts.logins++;
      const up = httpRequest({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on("error", () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${t.pathname}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every UserLoginSessionEvent the simulator holds, oldest first (QueryEvents from `observer`'s session). */
export async function loginEvents(observer: VimClient): Promise<VimEvent[]> {
  const events = await observer.eventManager.queryEvents({ eventTypeId: ["UserLoginSessionEvent"] });
  return [...new Map(events.map((e) => [e.key, e])).values()].sort((a, b) => a.key - b.key);
}

/** The IaasError a promise rejects with; fails the test if it resolves or rejects with anything else. */
export async function failure(p: Promise<unknown>): Promise<IaasError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(IaasError);
    return err as IaasError;
  }
  throw new Error("expected a failure");
}

export interface StartedProxy {
  /** Stops the proxy and deregisters its micro service. */
  stop(): Promise<void>;
}

/** The proxy started as its main starts it: on a micro service registered for the process. */
export async function startProxy(deps: ProxyDeps): Promise<StartedProxy> {
  const proxy = buildProxy(deps);
  const micro = await addMicroService(deps.nc, ServiceNames.vcenterProxy, "0.1.0", PROXY_DESCRIPTION);
  await proxy.start(micro);
  return {
    async stop() {
      await proxy.stop();
      await micro.stop();
    },
  };
}
