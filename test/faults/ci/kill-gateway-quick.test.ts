/**
 * The CI-sized version of test/faults/kill-gateway.test.ts: three kill -9 rounds of the gateway
 * while Slack requests arrive, Slack-style retries, every command applied exactly once. Runs in
 * `npm test` (about fifteen seconds); `npm run test:faults` runs the ten-round scenarios.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, sleep } from "../lib/system.js";
import { newLedger, poolNames, report, runKillRounds, verifyExactlyOnce, type Ledger } from "../lib/rounds.js";

describe("kill -9 the gateway mid-request (3 rounds)", () => {
  let sys: FaultSystem;
  let ledger: Ledger;
  beforeAll(async () => {
    sys = await FaultSystem.start({ name: "ci-kill-gateway", ackWaitMs: { gatewayResults: 5_000 }, env: { power: { POWER_TIMEOUT_MS: "5000" } } });
    await sys.createVms(poolNames("cg", 4));
    ledger = await newLedger(sys);
  });
  afterAll(async () => {
    if (sys) sys.onSlashAnswer = undefined;
    await sys?.dispose();
  });

  it("no request lost, no command applied twice, one final post each", async () => {
    await runKillRounds(sys, ledger, {
      rounds: 3,
      perRound: 6,
      victim: "gateway",
      killWhen: async () => {
        const first = new Promise<void>((resolve) => (sys.onSlashAnswer = resolve));
        await Promise.race([first, sleep(3_000)]);
        sys.onSlashAnswer = undefined;
        return sys.inflightSlash > 0;
      },
    });
    const v = await verifyExactlyOnce(sys, ledger, 60_000, ledger.kills);
    expect(sys.crashes()).toEqual([]);
    expect(await sys.ping("gateway")).toBe(1);
    report("kill -9 gateway (CI)", { kills: ledger.kills, killsMidFlight: ledger.killsMidFlight, ...v, lost: 0 });
  });
});
