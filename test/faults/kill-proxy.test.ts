/**
 * kill -9 of vcenter-proxy (the one holder of the vCenter session) while power operations are in
 * flight, ten times. The power service's request to the dead proxy times out (POWER_TIMEOUT_MS
 * + 5 s), the command is retried with back-off, the restarted proxy logs in again, and the
 * resumed command finds the VM already in the state it asked for (the simulator finished the
 * task the dead proxy had started). Requests made while no proxy runs get "no responders" and
 * are retried too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultSystem, sleep, until } from "./lib/system.js";
import { anyInFlight, newLedger, poolNames, report, runKillRounds, verifyExactlyOnce, type Ledger } from "./lib/rounds.js";

const ROUNDS = 10;

describe("kill -9 vcenter-proxy mid-command, 10 rounds", () => {
  let sys: FaultSystem;
  let ledger: Ledger;
  beforeAll(async () => {
    sys = await FaultSystem.start({
      name: "kill-proxy",
      vcsim: { methodDelayMs: { PowerOnVM_Task: 1500, PowerOffVM_Task: 1500 } },
      env: { power: { POWER_TIMEOUT_MS: "3000", POWER_CONCURRENCY: "8" }, "vcenter-proxy": { LOG_LEVEL: "debug" } },
    });
    await sys.createVms(poolNames("kx", 12));
    ledger = await newLedger(sys);
  });
  afterAll(async () => {
    await sys?.dispose();
  });

  it("no command lost, none applied twice, exactly one final result each", async () => {
    await runKillRounds(sys, ledger, {
      rounds: ROUNDS,
      perRound: 4,
      victim: "vcenter-proxy",
      killWhen: async (r, round) => {
        await round.sent;
        const ids = round.ids();
        await until(`a command of round ${r} to start`, () => anyInFlight(sys, ids), 30_000, sys);
        // Into the 1.5 s power task the proxy is waiting on.
        await sleep(300);
        return anyInFlight(sys, ids);
      },
    });
    const v = await verifyExactlyOnce(sys, ledger, 120_000);
    expect(sys.crashes(), "no service exited on its own").toEqual([]);
    expect(ledger.killsMidFlight).toBeGreaterThanOrEqual(ROUNDS / 2);
    for (const name of ["gateway", "power", "vcenter-proxy"]) expect(await sys.ping(name), `${name} answers $SRV.PING`).toBe(1);
    report("kill -9 vcenter-proxy", { kills: ledger.kills, killsMidFlight: ledger.killsMidFlight, ...v, lost: 0 });
  });
});
