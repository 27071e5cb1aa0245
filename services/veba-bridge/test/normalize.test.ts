import { describe, expect, it } from "vitest";
import {
  NormalizedVsphereEventSchema,
  VsphereEventSchema,
  eventMsgId,
  eventSubject,
  normalizeEventData,
  normalizeVsphereEvent,
  readEventKey,
  type NormalizedVsphereEvent,
} from "@iaas/contracts";
import { camelize, loadFixtures } from "./fixtures.js";

const dc = (value: string, name: string) => ({ type: "Datacenter", value, name });
const cluster = (value: string, name: string) => ({ type: "ClusterComputeResource", value, name });
const host = (value: string, name: string) => ({ type: "HostSystem", value, name });
const vm = (value: string, name: string) => ({ type: "VirtualMachine", value, name });
const ds = (value: string, name: string) => ({ type: "Datastore", value, name });

/** Read by hand from each file in test/fixtures/veba. */
const expected: Record<string, NormalizedVsphereEvent> = {
  "AlarmStatusChangedEvent.datastore-custom-alarm.enriched-alarminfo.data.json": {
    eventClass: "AlarmStatusChangedEvent",
    key: 4269111,
    createdTime: "2021-06-30T13:57:22.611Z",
    message: "Alarm 'VEBA-DATASTORE-WARN' on sm-vsanDatastore changed from Gray to Yellow",
    alarmName: "VEBA-DATASTORE-WARN",
    alarm: { type: "Alarm", value: "alarm-906", name: "VEBA-DATASTORE-WARN" },
    from: "gray",
    to: "yellow",
    entity: ds("datastore-13", "sm-vsanDatastore"),
    datastore: ds("datastore-13", "sm-vsanDatastore"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
  "AlarmStatusChangedEvent.datastore-usage-on-disk.data.json": {
    eventClass: "AlarmStatusChangedEvent",
    key: 952175,
    createdTime: "2022-04-27T14:14:13.089Z",
    message: "Alarm 'Datastore usage on disk' on ProdDatstore1 changed from Gray to Yellow",
    alarmName: "Datastore usage on disk",
    alarm: { type: "Alarm", value: "alarm-7", name: "Datastore usage on disk" },
    from: "gray",
    to: "yellow",
    entity: ds("datastore-60", "ProdDatastore1"),
    datastore: ds("datastore-60", "ProdDatastore1"),
    datacenter: dc("datacenter-47", "DataCenter1"),
  },
  "AlarmStatusChangedEvent.host-cpu-cluster-alarm.router-structured-ce.json": {
    eventClass: "AlarmStatusChangedEvent",
    key: 15158,
    createdTime: "2021-11-05T13:02:32.966Z",
    message: "Alarm 'cluster-cpu-above-80' on 10.161.167.160 changed from Green to Red",
    alarmName: "cluster-cpu-above-80",
    alarm: { type: "Alarm", value: "alarm-282", name: "cluster-cpu-above-80" },
    from: "green",
    to: "red",
    entity: host("host-27", "10.161.167.160"),
    host: host("host-27", "10.161.167.160"),
    computeResource: cluster("domain-c7", "cls"),
    datacenter: dc("datacenter-2", "vcqaDC"),
  },
  "DrsVmPoweredOnEvent.data.json": {
    eventClass: "DrsVmPoweredOnEvent",
    key: 2816789,
    createdTime: "2021-05-17T21:39:03.974Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "DRS powered on K8s-User-Group-Test on 192.168.30.5 in Primp-Datacenter",
    entity: vm("vm-11099", "REPLACE-ME"),
    vm: vm("vm-11099", "REPLACE-ME"),
    host: host("host-11", "192.168.30.5"),
    computeResource: cluster("domain-c8", "Supermicro-Cluster"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
  "DrsVmPoweredOnEvent.tanzu-structured-ce.json": {
    eventClass: "DrsVmPoweredOnEvent",
    key: 992270,
    createdTime: "2021-05-04T07:33:32.759Z",
    userName: "VSPHERE.LOCAL\\test-user",
    message: "DRS powered On TestVM on esxi1.local in Datacenter",
    entity: vm("vm-596", "TestVM"),
    vm: vm("vm-596", "TestVM"),
    host: host("host-34", "esxi1.local"),
    computeResource: cluster("domain-c84", "Cluster01"),
    datacenter: dc("datacenter-21", "Datacenter"),
  },
  "EnteredMaintenanceModeEvent.data.json": {
    eventClass: "EnteredMaintenanceModeEvent",
    key: 910093,
    createdTime: "2022-04-20T15:47:32.365Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "Host esx02.cl.vmweventbroker.io in HomeLab has entered maintenance mode",
    entity: host("REPLACE-ME", "esx02.cl.vmweventbroker.io"),
    host: host("REPLACE-ME", "esx02.cl.vmweventbroker.io"),
    computeResource: cluster("domain-c52", "CL1"),
    datacenter: dc("datacenter-47", "HomeLab"),
  },
  "EventEx.com.vmware.cis.tagging.attach.data.json": {
    eventClass: "com.vmware.cis.tagging.attach",
    key: 326221,
    createdTime: "2021-10-14T09:47:57.491Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "User VSPHERE.LOCAL\\Administrator attached tag example-tag to object example-vm",
    eventTypeId: "com.vmware.cis.tagging.attach",
  },
  "EventEx.com.vmware.vc.HA.ClusterFailoverActionCompletedEvent.data.json": {
    eventClass: "com.vmware.vc.HA.ClusterFailoverActionCompletedEvent",
    key: 929015,
    createdTime: "2022-04-25T17:29:48.171Z",
    message: "vSphere HA completed a virtual machine failover action in cluster CL1 in datacenter DC1",
    eventTypeId: "com.vmware.vc.HA.ClusterFailoverActionCompletedEvent",
    entity: cluster("domain-c52", "CL1"),
    computeResource: cluster("domain-c52", "CL1"),
    datacenter: dc("datacenter-47", "DC1"),
  },
  "TaskEvent.CreateSnapshot_Task.data.json": {
    eventClass: "TaskEvent",
    key: 4671568,
    createdTime: "2021-07-12T15:42:53.220Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "Task: Create virtual machine snapshot",
    entity: vm("vm-11158", "Ubuntu-18.04"),
    vm: vm("vm-11158", "Ubuntu-18.04"),
    host: host("host-11", "192.168.30.5"),
    computeResource: cluster("domain-c8", "Supermicro-Cluster"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
  "VmMigratedEvent.data.json": {
    eventClass: "VmMigratedEvent",
    key: 5636626,
    createdTime: "2021-08-10T18:20:24.042Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message:
      "Virtual machine TestVM-01 was migrated from host 192.168.30.101, vsanDatastore in Primp-Datacenter to 192.168.30.100, vsanDatastore in Primp-Datacenter",
    entity: vm("vm-15161", "TestVM-01"),
    vm: vm("vm-15161", "TestVM-01"),
    host: host("host-15147", "192.168.30.100"),
    datastore: ds("datastore-15160", "vsanDatastore"),
    computeResource: cluster("domain-c15140", "VEBA-Cluster"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
  "VmPoweredOffEvent.data.json": {
    eventClass: "VmPoweredOffEvent",
    key: 2817273,
    createdTime: "2021-05-17T22:01:36.496Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "K8s-User-Group-Test on  192.168.30.5 in Primp-Datacenter is powered off",
    entity: vm("vm-11099", "K8s-User-Group-Test"),
    vm: vm("vm-11099", "K8s-User-Group-Test"),
    host: host("host-11", "192.168.30.5"),
    computeResource: cluster("domain-c8", "Supermicro-Cluster"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
  "VmPoweredOffEvent.router-structured-ce.json": {
    eventClass: "VmPoweredOffEvent",
    key: 9902,
    createdTime: "2020-02-11T21:28:23.677Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: "test-01 on  10.0.0.1 in testDC is powered off",
    entity: vm("vm-56", "test-01"),
    vm: vm("vm-56", "test-01"),
    host: host("host-21", "10.185.22.74"),
    computeResource: cluster("domain-c7", "cls"),
    datacenter: dc("datacenter-2", "testDC"),
  },
  "VmReconfiguredEvent.nic-portgroup-change.data.json": {
    eventClass: "VmReconfiguredEvent",
    key: 689459,
    createdTime: "2022-02-24T20:01:17.280Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: expect.stringMatching(/^Reconfigured tinycore-2 on esx02\.lab\.local in HomeLab\./) as unknown as string,
    entity: vm("REPLACE-ME", "REPLACE-ME"),
    vm: vm("REPLACE-ME", "REPLACE-ME"),
    host: host("host-58", "esx02.lab.local"),
    computeResource: cluster("domain-c52", "CL1"),
    datacenter: dc("datacenter-47", "HomeLab"),
  },
  "VmReconfiguredEvent.router-structured-ce.json": {
    eventClass: "VmReconfiguredEvent",
    key: 22273,
    createdTime: "2020-09-15T21:03:03.183Z",
    userName: "VSPHERE.LOCAL\\Administrator",
    message: expect.stringMatching(/^Reconfigured core-A on esx-01a\.yourdomain\.com in RegionA01\..*config\.memoryHotAddEnabled: true -> false/s) as unknown as string,
    entity: vm("vm-1047", "core-A"),
    vm: vm("vm-1047", "core-A"),
    host: host("host-1009", "esx-01a.yourdomain.com"),
    computeResource: cluster("domain-c1006", "RegionA01-COMP01"),
    datacenter: dc("datacenter-1001", "RegionA01"),
  },
  "VmRemovedEvent.data.json": {
    eventClass: "VmRemovedEvent",
    key: 2040013,
    createdTime: "2021-04-23T20:21:02.277Z",
    userName: "VSPHERE.LOCAL\\william",
    message: "Removed FooBar on 192.168.30.5 from Primp-Datacenter",
    entity: vm("vm-10838", "FooBar"),
    vm: vm("vm-10838", "FooBar"),
    host: host("host-11", "192.168.30.5"),
    computeResource: cluster("domain-c8", "Supermicro-Cluster"),
    datacenter: dc("datacenter-3", "Primp-Datacenter"),
  },
};

const fixtures = loadFixtures();

describe("normalizer on the real VEBA samples", () => {
  it("has an expectation for every fixture file, and a fixture for every expectation", () => {
    expect(fixtures.map((f) => f.file).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(fixtures.map((f) => [f.file, f] as const))("%s (PascalCase, as VEBA sends it)", (file, f) => {
    const n = normalizeEventData(f.eventClass, f.data);
    expect(n).toEqual(expected[file]);
    expect(NormalizedVsphereEventSchema.safeParse(n).success).toBe(true);
  });

  it.each(fixtures.map((f) => [f.file, f] as const))("%s (camelCase keys give the same result)", (file, f) => {
    expect(normalizeEventData(f.eventClass, camelize(f.data))).toEqual(expected[file]);
  });
});

describe("normalizer edge cases", () => {
  it("prefers a non-null field to a null one, whichever case it is in", () => {
    const n = normalizeEventData("VmPoweredOffEvent", { Key: 7, Vm: null, vm: { name: "web-01", vm: { type: "VirtualMachine", value: "vm-9" } } });
    expect(n.vm).toEqual(vm("vm-9", "web-01"));
  });

  it("refuses an event without data.Key", () => {
    expect(() => normalizeEventData("VmPoweredOffEvent", { ChainId: 1 })).toThrowErrorMatchingInlineSnapshot(`[TypeError: the event has no data.Key]`);
    expect(readEventKey({ Key: "12" })).toBe(12);
    expect(readEventKey({ Key: -1 })).toBeUndefined();
    expect(readEventKey({ Key: 1.5 })).toBeUndefined();
    expect(readEventKey({ Key: "x" })).toBeUndefined();
    expect(readEventKey("Key")).toBeUndefined();
  });

  it("normalizes a message from the stream with its own key", () => {
    const f = fixtures.find((x) => x.file === "AlarmStatusChangedEvent.host-cpu-cluster-alarm.router-structured-ce.json")!;
    const msg = VsphereEventSchema.parse({
      id: f.envelope!.id,
      source: f.envelope!.source,
      eventClass: f.eventClass,
      key: 15158,
      time: "2021-11-05T13:02:32.966Z",
      receivedAt: new Date().toISOString(),
      via: "veba",
      ceType: f.envelope!.type,
      data: f.data,
    });
    expect(normalizeVsphereEvent(msg)).toEqual(expected[f.file]);
  });

  it("the message schema is strict", () => {
    const base = { id: "1", source: "https://vc/sdk", eventClass: "VmPoweredOffEvent", key: 1, time: "2020-01-01T00:00:00Z", receivedAt: "2020-01-01T00:00:00Z", via: "veba", data: {} };
    expect(VsphereEventSchema.safeParse(base).success).toBe(true);
    expect(VsphereEventSchema.safeParse({ ...base, extra: 1 }).success).toBe(false);
    expect(VsphereEventSchema.safeParse({ ...base, eventClass: "a.>" }).success).toBe(false);
    expect(VsphereEventSchema.safeParse({ ...base, via: "http" }).success).toBe(false);
  });
});

describe("subjects and message ids", () => {
  it("a plain class is one subject token; an EventEx id keeps its dots as levels", () => {
    expect(eventSubject("AlarmStatusChangedEvent")).toBe("vsphere.event.AlarmStatusChangedEvent");
    expect(eventSubject("com.vmware.vc.HA.ClusterFailoverActionCompletedEvent")).toBe("vsphere.event.com.vmware.vc.HA.ClusterFailoverActionCompletedEvent");
    for (const bad of ["", "a..b", ".a", "a.", ">", "a.*", "Vm Event", "a.b>"]) expect(() => eventSubject(bad), bad).toThrow(TypeError);
  });

  it("the msg id is source#key#class#created, or a hash of the four when that is long, not plain ASCII or holds another #", () => {
    const ev = { source: "https://vc.example.com/sdk", eventClass: "AlarmStatusChangedEvent", key: 42, id: "u-1", data: { Key: 42, CreatedTime: "2026-11-25T12:00:00.123456Z" } };
    expect(eventMsgId(ev)).toBe("https://vc.example.com/sdk#42#AlarmStatusChangedEvent#2026-11-25T12:00:00.123Z");
    // The CloudEvent id only counts when there is no CreatedTime (the router sends a fresh one per delivery).
    expect(eventMsgId({ ...ev, id: "u-2" })).toBe(eventMsgId(ev));
    expect(eventMsgId({ ...ev, data: { Key: 42 } })).toBe("https://vc.example.com/sdk#42#AlarmStatusChangedEvent#id:u-1");
    expect(eventMsgId({ ...ev, data: { key: 42, createdTime: "2026-11-25T12:00:00.123Z" } })).toBe(eventMsgId(ev));
    // Each part changes the identity.
    for (const other of [{ source: "https://vc-b/sdk" }, { key: 43 }, { eventClass: "UserLoginSessionEvent" }, { data: { Key: 42, CreatedTime: "2026-11-25T12:00:01Z" } }]) {
      expect(eventMsgId({ ...ev, ...other })).not.toBe(eventMsgId(ev));
    }
    const long = `https://${"v".repeat(300)}/sdk`;
    expect(eventMsgId({ ...ev, source: long })).toMatch(/^sha256:[0-9a-f]{64}#42$/);
    expect(eventMsgId({ ...ev, source: long })).toBe(eventMsgId({ ...ev, source: long }));
    expect(eventMsgId({ ...ev, source: long, key: 43 })).not.toBe(eventMsgId({ ...ev, source: long }));
    expect(eventMsgId({ ...ev, source: "https://vc 1/sdk" })).toMatch(/^sha256:/);
    // A # in a part could shift the boundaries between parts: hashed, never ambiguous.
    expect(eventMsgId({ ...ev, data: { Key: 42 }, id: "a#b" })).toMatch(/^sha256:/);
    expect(eventMsgId({ ...ev, source: "https://vc/sdk#42" })).toMatch(/^sha256:/);
  });
});
