import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ValidationError,
  type AlarmStatusChangedEventSpec,
  type MoRef,
  type VimClient,
  type VimEvent,
} from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

let sim: Vcsim;
let c: VimClient;
let vm: MoRef;
let dc: MoRef;

beforeAll(async () => {
  sim = await startVcsim();
  c = await connect(sim);
  vm = await mustFind(c, "/DC0/vm/DC0_H0_VM0");
  dc = await mustFind(c, "/DC0");
});

afterAll(async () => {
  await c?.logout();
  await sim?.stop();
});

function alarmEvent(message: string): AlarmStatusChangedEventSpec {
  return {
    _type: "AlarmStatusChangedEvent",
    datacenter: { name: "DC0", datacenter: dc },
    // Entity-filtered collectors look at `vm`, not at `entity`.
    vm: { name: "DC0_H0_VM0", vm },
    fullFormattedMessage: message,
    alarm: { name: "VM CPU Usage", alarm: { type: "Alarm", value: "alarm-6" } },
    source: { name: "Datacenters", entity: c.serviceContent.rootFolder },
    entity: { name: "DC0_H0_VM0", entity: vm },
    from: "green",
    to: "red",
  };
}

function expectAlarm(e: VimEvent | undefined, message: string): void {
  expect(e).toBeDefined();
  expect(e!._type).toBe("AlarmStatusChangedEvent");
  expect(typeof e!.key).toBe("number");
  expect(typeof e!.chainId).toBe("number");
  expect(e!.createdTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  // vcsim replaces userName with the session's user.
  expect(e!.userName).toBe(sim.username);
  expect(e!.fullFormattedMessage).toBe(message);
  expect(e!.vm).toEqual({ name: "DC0_H0_VM0", vm });
  expect(e!.datacenter).toEqual({ name: "DC0", datacenter: dc });
  expect(e!.alarm).toEqual({ name: "VM CPU Usage", alarm: { type: "Alarm", value: "alarm-6" } });
  expect(e!.entity).toEqual({ name: "DC0_H0_VM0", entity: vm });
  expect(e).toMatchObject({ from: "green", to: "red" });
}

describe("events", () => {
  it("a posted AlarmStatusChangedEvent comes back from QueryEvents, also under its base type", async () => {
    const msg = "Alarm 'VM CPU Usage' on DC0_H0_VM0 changed from Green to Red (query)";
    await c.eventManager.postEvent(alarmEvent(msg));
    const exact = await c.eventManager.queryEvents({ eventTypeId: ["AlarmStatusChangedEvent"] });
    expectAlarm(
      exact.find((e) => e.fullFormattedMessage === msg),
      msg,
    );
    const base = await c.eventManager.queryEvents({ eventTypeId: ["AlarmEvent"] });
    expect(base.some((e) => e.fullFormattedMessage === msg)).toBe(true);
  });

  it("an entity-filtered collector created beforehand returns it from ReadNextEvents and latestPage", async () => {
    const collector = await c.eventManager.createCollectorForEvents({
      entity: { entity: vm, recursion: "self" },
      eventTypeId: ["AlarmStatusChangedEvent"],
    });
    try {
      const msg = "Alarm 'VM CPU Usage' on DC0_H0_VM0 changed from Green to Red (collector)";
      await c.eventManager.postEvent(alarmEvent(msg));
      const next = await collector.readNextEvents(10);
      expectAlarm(
        next.find((e) => e.fullFormattedMessage === msg),
        msg,
      );
      const page = await collector.latestPage();
      expect(page.some((e) => e.fullFormattedMessage === msg)).toBe(true);
    } finally {
      await collector.destroyCollector();
    }
  });

  it("events of types outside the schema still decode their Event fields", async () => {
    const target = await mustFind(c, "/DC0/vm/DC0_H0_VM1");
    await (await c.vm(target).powerOff()).wait();
    const events = await c.eventManager.queryEvents({
      entity: { entity: target, recursion: "self" },
      eventTypeId: ["VmPoweredOffEvent"],
    });
    expect(events.length).toBeGreaterThan(0);
    const e = events[0]!;
    expect(e._type).toBe("VmPoweredOffEvent");
    expect(typeof e.key).toBe("number");
    expect(e.vm).toEqual({ name: "DC0_H0_VM1", vm: target });
    expect(e.fullFormattedMessage).toContain("DC0_H0_VM1");
  });

  it("a collector is recreated after a re-login", async () => {
    const admin = await connect(sim);
    const collector = await c.eventManager.createCollectorForEvents({ eventTypeId: ["AlarmStatusChangedEvent"], maxCount: 1000 });
    try {
      const oldRef = collector.ref;
      await admin.sessionManager.terminateSession([c.session!.key]);
      const msg = "after re-login";
      await c.eventManager.postEvent(alarmEvent(msg));
      expect(c.stats.relogins).toBe(1);
      const page = await collector.latestPage();
      expect(collector.ref).not.toEqual(oldRef);
      expect(page.some((e) => e.fullFormattedMessage === msg)).toBe(true);
    } finally {
      await collector.destroyCollector();
      await admin.logout();
    }
  });

  it("an event type the client cannot encode is refused before sending (vcsim would crash)", async () => {
    const err = await rejection(c.eventManager.postEvent({ _type: "NoSuchEvent" }));
    expect(err).toBeInstanceOf(ValidationError);
  });
});
