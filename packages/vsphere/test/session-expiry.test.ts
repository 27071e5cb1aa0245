import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, mustFind, startVcsim, type Vcsim } from "./helpers.js";

// vcsim removes a session idle for 1-2x the timeout; 3 s of silence is past that for a 1 s timeout.
const IDLE_S = 1;
const PAST_EXPIRY_MS = 3_000;

let sim: Vcsim;

beforeAll(async () => {
  sim = await startVcsim({ sessionIdleTimeoutSeconds: IDLE_S });
});

afterAll(async () => {
  await sim?.stop();
});

describe("idle session expiry", () => {
  it("a call after expiry logs in again transparently", async () => {
    const c = await connect(sim, { keepAliveMs: 0 });
    const admin = await connect(sim, { keepAliveMs: 0 });
    try {
      const oldKey = c.session!.key;
      await sleep(PAST_EXPIRY_MS);
      const vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
      expect(vm.type).toBe("VirtualMachine");
      expect(c.stats.relogins).toBe(1);
      expect(await admin.sessionManager.sessionIsActive(oldKey, sim.username)).toBe(false);
    } finally {
      await c.logout();
      await admin.logout();
    }
  });

  it("50 concurrent calls after expiry cause exactly one re-login", async () => {
    const c = await connect(sim, { keepAliveMs: 0 });
    try {
      await sleep(PAST_EXPIRY_MS);
      const times = await Promise.all(Array.from({ length: 50 }, () => c.currentTime()));
      expect(times).toHaveLength(50);
      expect(c.stats.relogins).toBe(1);
      expect(c.stats.logins).toBe(2);
    } finally {
      await c.logout();
    }
  });

  it("the keep-alive stops the session expiring", async () => {
    const c = await connect(sim, { keepAliveMs: 250 });
    try {
      const key = c.session!.key;
      await sleep(PAST_EXPIRY_MS);
      await c.currentTime();
      expect(c.stats.relogins).toBe(0);
      expect(c.session!.key).toBe(key);
      // The keep-alive did send requests while we slept.
      expect(c.stats.calls).toBeGreaterThan(5);
    } finally {
      await c.logout();
    }
  });
});
