import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "@iaas/runtime";
import { PollerEnvSchema, pollerConfigFromEnv, pollerConfigsFromEnv, sourceOf, toVsphereEvent } from "../src/mod.js";

describe("poller configuration", () => {
  it("is off unless POLLER_ENABLED=true; when on it needs a source", () => {
    expect(loadConfig(PollerEnvSchema, {}).POLLER_ENABLED).toBe(false);
    let err: unknown;
    try {
      loadConfig(PollerEnvSchema, { POLLER_ENABLED: "true" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^invalid configuration: POLLER_SOURCE: is required when POLLER_ENABLED=true/);
    expect(() => loadConfig(PollerEnvSchema, { POLLER_ENABLED: "true", POLLER_SOURCE: "https://vc/sdk", POLLER_EVENT_TYPES: "AlarmEvent,bad type" })).toThrow(/POLLER_EVENT_TYPES/);
    expect(() => loadConfig(PollerEnvSchema, { POLLER_ENABLED: "true", POLLER_SOURCE: "https://vc/sdk", POLLER_START: "yesterday" })).toThrow(/POLLER_START/);
  });

  it("takes the source from VCENTER_URL without its credentials, and reads the rest", () => {
    const env = loadConfig(PollerEnvSchema, { POLLER_ENABLED: "true", VCENTER_URL: "https://svc:s3cret@vcenter.example.com/sdk?x=1", POLL_INTERVAL_MS: "2500", POLLER_EVENT_TYPES: "AlarmStatusChangedEvent, VmPoweredOffEvent", POLLER_START: "1200" });
    const c = pollerConfigFromEnv(env, 5000);
    expect(c).toEqual({ source: "https://vcenter.example.com/sdk", intervalMs: 2500, batch: 100, eventTypes: ["AlarmStatusChangedEvent", "VmPoweredOffEvent"], start: 1200, requestTimeoutMs: 30_000, publishTimeoutMs: 5000 });
    expect(sourceOf("http://127.0.0.1:8989/sdk")).toBe("http://127.0.0.1:8989/sdk");
  });

  it("runs one poller per vCenter of VCENTER_SOURCES, each with its source; one for the default vCenter without it", () => {
    const base = { POLLER_ENABLED: "true", VCENTER_URL: "https://vc-a.example.com/sdk" };
    expect(pollerConfigsFromEnv(loadConfig(PollerEnvSchema, base), 5000).map((c) => [c.vcenter, c.source])).toEqual([[undefined, "https://vc-a.example.com/sdk"]]);
    const env = loadConfig(PollerEnvSchema, { ...base, VCENTER_SOURCES: "default=https://vc-a.example.com/sdk,dr-site=https://vc-b.example.com/sdk" });
    expect(pollerConfigsFromEnv(env, 5000).map((c) => [c.vcenter, c.source])).toEqual([
      [undefined, "https://vc-a.example.com/sdk"],
      ["dr-site", "https://vc-b.example.com/sdk"],
    ]);
    expect(() => loadConfig(PollerEnvSchema, { ...base, VCENTER_SOURCES: "dr-site" })).toThrow(/VCENTER_SOURCES: .*not id=source/);
  });

  it("names EventEx events by their type id, as VEBA does", () => {
    const out = toVsphereEvent({ eventClass: "EventEx", key: 9, createdTime: "2026-01-01T00:00:00Z", data: { key: 9, eventTypeId: "com.vmware.vc.HA.ClusterFailoverActionCompletedEvent", severity: "info" } }, "https://vc/sdk", new Date());
    expect(out).toMatchObject({ subject: "vsphere.event.com.vmware.vc.HA.ClusterFailoverActionCompletedEvent", message: { eventClass: "com.vmware.vc.HA.ClusterFailoverActionCompletedEvent", data: { Key: 9, EventTypeId: "com.vmware.vc.HA.ClusterFailoverActionCompletedEvent", Severity: "info" } } });
  });
});
