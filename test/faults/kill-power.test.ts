/**
 * kill -9 of the power service in the middle of commands, ten times. The power consumer is
 * created by the test with a 6 s ack wait (contracts say 120 s): the operator path, since the
 * runtime leaves an existing consumer as it is. A command held by the killed instance then comes
 * back to the restarted one within seconds instead of two minutes. A method delay on the power
 * tasks keeps each command in flight for 1.5 s; each kill waits until a command of the round is
 * started, then a varying offset, so kills land before, during and after the vCenter task.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, sleep, until } from "./lib/system.js";
import { anyInFlight, newLedger, poolNames, report, runKillRounds, verifyExactlyOnce, type Ledger } from "./lib/rounds.js";

const ROUNDS = 10;
const OFFSETS_MS = [0, 250, 500, 800, 1100, 1400, 1700, 100, 650, 1250];

describe("kill -9 the power service mid-command, 10 rounds", () => {
  let sys: FaultSystem;
  let ledger: Ledger;
  beforeAll(async () => {
    sys = await FaultSystem.start({
      name: "kill-power",
      vcsim: { methodDelayMs: { PowerOnVM_Task: 1500, PowerOffVM_Task: 1500 } },
      ackWaitMs: { power: 6_000 },
      env: { power: { POWER_TIMEOUT_MS: "4000", POWER_CONCURRENCY: "8" }, "vcenter-proxy": { LOG_LEVEL: "debug" } },
    });
    await sys.createVms(poolNames("kp", 12));
    ledger = await newLedger(sys);
  });
  afterAll(async () => {
    await sys?.dispose();
  });

  it("no command lost, none applied twice, exactly one final result each", async () => {
    await runKillRounds(sys, ledger, {
      rounds: ROUNDS,
      perRound: 4,
      victim: "power",
      killWhen: async (r, round) => {
        await round.sent;
        const ids = round.ids();
        await until(`a command of round ${r} to start`, () => anyInFlight(sys, ids), 20_000, sys);
        await sleep(OFFSETS_MS[r % OFFSETS_MS.length]!);
        return anyInFlight(sys, ids);
      },
    });
    const v = await verifyExactlyOnce(sys, ledger, 90_000);
    expect(sys.crashes(), "no service exited on its own").toEqual([]);
    // Most kills must have hit a command between "started" and "done", or this proved little.
    expect(ledger.killsMidFlight).toBeGreaterThanOrEqual(ROUNDS / 2);
    for (const name of ["gateway", "power", "vcenter-proxy"]) expect(await sys.ping(name), `${name} answers $SRV.PING`).toBe(1);
    report("kill -9 power", { kills: ledger.kills, killsMidFlight: ledger.killsMidFlight, ...v, lost: 0 });
  });
});
