import { IaasError, ProxyEndpoints, type VmSummary } from "@iaas/contracts";
import type { NatsConnection } from "@nats-io/transport-node";
import { requestJson } from "./micro.js";

/** Answers about the VM itself (vm-get's verdict on the name): they stand as they are. */
const ANSWERS = new Set(["IAAS_VM_NOT_FOUND", "IAAS_VM_AMBIGUOUS", "IAAS_BAD_REQUEST", "IAAS_BAD_VM_NAME"]);

/**
 * The VM as a command service's guard needs it (owner, team, path), from vcenter-proxy's vm-get.
 * A guard that cannot read the owner must not act as if there were none: any failure that is not
 * an answer about the VM (not found, ambiguous) leaves as a retryable error, so the command is
 * tried again later rather than decided on half the facts.
 */
export async function readVmForGuard(nc: NatsConnection, vm: string, call: { timeoutMs: number; requestId: string }, vcenter?: string): Promise<VmSummary> {
  return guardRead(vm, async () => (await requestJson(nc, ProxyEndpoints.vmGet, { vm, ...inVcenter(vcenter) }, call)).vm);
}

/** The `vcenter` field of a proxy request for a command's vCenter: none for the default one, as before there were several. */
export function inVcenter(vcenter: string | undefined): { vcenter?: string } {
  return vcenter === undefined ? {} : { vcenter };
}

/** `read` of the VM `vm` (vm-get, vm-info) with readVmForGuard's rule for failures. */
export async function guardRead<T>(vm: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const ie = IaasError.from(err);
    if (ie.retryable || ANSWERS.has(ie.code)) throw ie;
    throw new IaasError("IAAS_VCENTER_UNAVAILABLE", `Cannot read who owns \`${vm}\` right now (${ie.message}), so nothing was done. Try again in a minute.`, { cause: err, retryable: true });
  }
}
