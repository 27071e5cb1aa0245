import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, stopProcess, waitUntil, type NatsServer } from "@iaas/testkit";

const fixture = fileURLToPath(new URL("./fixtures/service.ts", import.meta.url));

function run(env: Record<string, string>): { child: ChildProcess; lines: () => Record<string, unknown>[]; err: () => string } {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, err: () => err };
}

describe("runService", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  it("prepares, starts, registers the micro service, serves health with the service's checks, and stops in order", async () => {
    const p = run({ NATS_URL: nats.url, HEALTH_HOST: "127.0.0.1" });
    try {
      const ready = await waitUntil("the fixture to be ready", () => {
        if (p.child.exitCode !== null) throw new Error(`exited: ${p.err()}`);
        return p.lines().find((l) => l.msg === "fixture ready");
      }, 30_000);
      expect(p.lines().map((l) => l.msg).filter((m) => m !== "connected to NATS").slice(0, 3)).toEqual(["prepared", "started", "fixture ready"]);
      expect(ready).toMatchObject({ extra: "yes", healthPort: expect.any(Number), id: expect.any(String) });
      const r = await fetch(`http://127.0.0.1:${ready.healthPort as number}/readyz`);
      expect(await r.json()).toEqual({ ready: true, checks: { nats: true, fixture: true } });
      const nc = await connect({ servers: nats.url });
      try {
        const m = await nc.request("$SRV.PING.fixture", undefined, { timeout: 5_000 });
        expect(m.json()).toMatchObject({ name: "fixture", id: ready.id });
      } finally {
        await nc.close();
      }
      const exited = once(p.child, "exit");
      p.child.kill("SIGTERM");
      expect(((await exited) as [number])[0]).toBe(0);
      // The service stops while NATS is up; what outlives NATS is closed after the drain.
      expect(p.lines().filter((l) => l.msg === "stopping" || l.msg === "closing").map((l) => [l.msg, l.natsClosed])).toEqual([
        ["stopping", false],
        ["closing", true],
      ]);
    } finally {
      await stopProcess(p.child);
    }
  });

  it("a failing prepare stops the process with one line, before NATS is reached", async () => {
    // Nothing listens on port 1: were NATS connected first, the process would wait for it.
    const p = run({ NATS_URL: "nats://127.0.0.1:1", FIXTURE_PREPARE_FAILS: "1" });
    const [code] = (await once(p.child, "exit")) as [number];
    expect(code).toBe(1);
    expect(p.err()).toBe("FIXTURE_PREPARE_FAILS: prepare refused\n");
  });
});
