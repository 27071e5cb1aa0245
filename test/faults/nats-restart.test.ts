/**
 * nats-server restarted under load: file-backed JetStream, the same port and store. Once with
 * SIGTERM, once with SIGKILL. Commands keep coming; while NATS is away the gateway answers that
 * it cannot take commands, and the user sends the same request again (same trigger_id, so the
 * same command id: never a second command). Services must reconnect by themselves and carry on
 * from JetStream: nothing lost, nothing applied twice, one final result each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, sleep, until } from "./lib/system.js";
import { anyInFlight, idleVms, issueRound, newLedger, poolNames, report, verifyExactlyOnce, type Ledger } from "./lib/rounds.js";

const ROUNDS = 10;
const RESTART_AT: Record<number, "SIGTERM" | "SIGKILL"> = { 3: "SIGTERM", 7: "SIGKILL" };

describe("nats-server restart under load", () => {
  let sys: FaultSystem;
  let ledger: Ledger;
  beforeAll(async () => {
    sys = await FaultSystem.start({
      name: "nats-restart",
      vcsim: { methodDelayMs: { PowerOnVM_Task: 1000, PowerOffVM_Task: 1000 } },
      // Ack waits above the longest handling (a proxy request that times out: 4 s + 5 s), far below contracts' 120 s.
      ackWaitMs: { power: 20_000, gatewayResults: 10_000 },
      env: { power: { POWER_TIMEOUT_MS: "4000" } },
    });
    await sys.createVms(poolNames("nr", 8));
    ledger = await newLedger(sys);
  });
  afterAll(async () => {
    await sys?.dispose();
  });

  it("services reconnect and resume; nothing lost, nothing applied twice", async () => {
    const nats = sys.nats!;
    let restarts = 0;
    let refusals: number;
    for (let r = 0; r < ROUNDS; r++) {
      const vms = (await until(`4 idle VMs for round ${r}`, async () => {
        const idle = await idleVms(sys, ledger);
        return idle.length >= 4 && idle;
      }, 120_000, sys)).slice(0, 4);
      const sent = issueRound(sys, ledger, vms, r, undefined, true);
      const how = RESTART_AT[r];
      if (how) {
        await sent;
        const ids = ledger.issued.slice(-4).map((i) => i.slash.id);
        await until(`a command of round ${r} to start`, () => anyInFlight(sys, ids), 30_000, sys);
        const spare = (await idleVms(sys, ledger)).filter((vm) => !vms.includes(vm)).slice(0, 2);
        if (how === "SIGKILL") await nats.kill();
        else await nats.stop();
        // Requests sent during the outage are refused ("cannot take commands") and sent again.
        const during = issueRound(sys, ledger, spare, r, undefined, true);
        await sleep(2000);
        await nats.restart();
        await during;
        restarts += 1;
      }
      await sent;
    }
    refusals = ledger.issued.filter((i) => i.retries > 0).length;
    const v = await verifyExactlyOnce(sys, ledger, 150_000);
    expect(restarts).toBe(2);
    expect(refusals, "requests refused during an outage and sent again").toBeGreaterThan(0);
    expect(sys.crashes(), "no service exited on its own").toEqual([]);
    for (const name of ["gateway", "power", "vcenter-proxy"]) {
      await until(`${name} to answer $SRV.PING after the restarts`, async () => (await sys.ping(name)) === 1, 30_000, sys);
    }
    report("nats-server restart", { restarts, ...v, requestsRetriedByUser: refusals, lost: 0 });
  });
});
