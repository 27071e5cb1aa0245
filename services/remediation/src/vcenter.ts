import { ProxyEndpoints, type DatastoreInfo, type PowerAction, type VmInfo, type VmSummary } from "@iaas/contracts";
import { requestJson, type NatsConnection } from "@iaas/runtime";

/** What remediation asks of vCenter, through vcenter-proxy; every call has a deadline. */
export interface VcenterPort {
  vmInfo(vm: string): Promise<VmInfo>;
  /** Absolute targets: applying the same change twice changes nothing the second time. */
  reconfigure(vm: string, change: { cpu?: number; memoryMB?: number }): Promise<{ vm: VmInfo; changed: boolean }>;
  relocate(vm: string, datastore: string): Promise<{ vm: VmInfo; moved: boolean }>;
  power(vm: string, action: PowerAction): Promise<VmSummary>;
  datastores(): Promise<DatastoreInfo[]>;
  datastoreVms(datastore: string): Promise<VmSummary[]>;
  /** AcknowledgeAlarm in vCenter; `unsupported` where vCenter has no working AlarmManager (the simulator). */
  acknowledgeAlarm(alarm: string, entity: { type: "VirtualMachine" | "Datastore" | "HostSystem" | "ClusterComputeResource"; value: string }): Promise<{ acknowledged: boolean; unsupported: boolean }>;
}

export interface VcenterTimeouts {
  /** Reads (VM info, datastore lists). */
  lookupTimeoutMs: number;
  /** vCenter tasks (reconfigure, relocate, power); the request waits a little longer than the task. */
  taskTimeoutMs: number;
}

/**
 * The port over NATS request/reply. Endpoints are spelled `ProxyEndpoints.<name>` so the deploy
 * drift guard sees which ones remediation calls (each must be granted to its NATS user).
 * Failures arrive as IaasError (IAAS_TIMEOUT, IAAS_UNAVAILABLE retryable).
 */
export function vcenterOverNats(nc: NatsConnection, t: VcenterTimeouts, vcenter = "default"): VcenterPort {
  // The default vCenter is asked without a `vcenter` field, as before several vCenters.
  const on = vcenter === "default" ? {} : { vcenter };
  const lookup = () => ({ timeoutMs: t.lookupTimeoutMs });
  const task = () => ({ timeoutMs: t.taskTimeoutMs + 5_000 });
  return {
    vmInfo: async (vm) => (await requestJson(nc, ProxyEndpoints.vmInfo, { ...on, vm }, lookup())).vm,
    reconfigure: (vm, change) => requestJson(nc, ProxyEndpoints.vmReconfigure, { ...on, vm, ...change, timeoutMs: t.taskTimeoutMs }, task()),
    relocate: (vm, datastore) => requestJson(nc, ProxyEndpoints.vmRelocate, { ...on, vm, datastore, timeoutMs: t.taskTimeoutMs }, task()),
    power: async (vm, action) => (await requestJson(nc, ProxyEndpoints.vmPower, { ...on, vm, action, timeoutMs: t.taskTimeoutMs }, task())).vm,
    acknowledgeAlarm: (alarm, entity) => requestJson(nc, ProxyEndpoints.alarmAcknowledge, { ...on, alarm, entity }, lookup()),
    datastores: async () => (await requestJson(nc, ProxyEndpoints.datastoreList, on, lookup())).datastores,
    datastoreVms: async (datastore) => (await requestJson(nc, ProxyEndpoints.datastoreVms, { ...on, datastore }, lookup())).vms,
  };
}
