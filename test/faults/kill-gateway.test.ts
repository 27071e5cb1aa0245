/**
 * kill -9 of the gateway while Slack requests are arriving and results are being relayed, ten
 * times. Like Slack, a request that got no answer is sent again with the same trigger_id and
 * X-Slack-Retry-Num once the gateway is back; the command id is derived from the trigger_id, so
 * JetStream drops a repeat. The gateway's result consumer is created by the test with a 5 s ack
 * wait (contracts: 30 s), so a result the killed gateway held is relayed again within seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, sleep } from "./lib/system.js";
import { newLedger, poolNames, report, runKillRounds, verifyExactlyOnce, type Ledger } from "./lib/rounds.js";

const ROUNDS = 10;

describe("kill -9 the gateway mid-request, 10 rounds", () => {
  let sys: FaultSystem;
  let ledger: Ledger;
  beforeAll(async () => {
    sys = await FaultSystem.start({
      name: "kill-gateway",
      vcsim: { methodDelayMs: { PowerOnVM_Task: 300, PowerOffVM_Task: 300 } },
      ackWaitMs: { gatewayResults: 5_000 },
      env: { power: { POWER_TIMEOUT_MS: "5000" } },
    });
    await sys.createVms(poolNames("kg", 8));
    ledger = await newLedger(sys);
  });
  afterAll(async () => {
    sys.onSlashAnswer = undefined;
    await sys?.dispose();
  });

  it("every request answered (after Slack-style retries), every command applied once, one final post each", async () => {
    await runKillRounds(sys, ledger, {
      rounds: ROUNDS,
      perRound: 6,
      victim: "gateway",
      killWhen: async () => {
        // Kill on the first answer of the round: the other requests are still on their way in.
        const first = new Promise<void>((resolve) => (sys.onSlashAnswer = resolve));
        await Promise.race([first, sleep(3_000)]);
        sys.onSlashAnswer = undefined;
        return sys.inflightSlash > 0;
      },
    });
    const v = await verifyExactlyOnce(sys, ledger, 90_000, ledger.kills);
    expect(sys.crashes(), "no service exited on its own").toEqual([]);
    expect(ledger.killsMidFlight, "kills that found requests in flight").toBeGreaterThanOrEqual(ROUNDS / 2);
    expect(v.retriedRequests, "requests that needed a Slack-style retry").toBeGreaterThan(0);
    for (const name of ["gateway", "power", "vcenter-proxy"]) expect(await sys.ping(name), `${name} answers $SRV.PING`).toBe(1);
    report("kill -9 gateway", { kills: ledger.kills, killsMidFlight: ledger.killsMidFlight, ...v, lost: 0 });
  });
});
