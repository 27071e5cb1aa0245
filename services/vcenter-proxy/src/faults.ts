import { IaasError, PowerStateWords } from "@iaas/contracts";
import { TimeoutError, TransportError, ValidationError, VimFault, ProtocolError } from "@iaas/vsphere";

/** What the caller was doing, so the message can name it. */
export interface FaultContext {
  /** The VM name as the user wrote it, for messages. */
  vm?: string;
  /** What was attempted, in words: "power off", "find". */
  action?: string;
}

/**
 * vSphere failures → the product's coded errors. Matched by fault type (and its supertypes),
 * never by message text; the vSphere fault name is kept in the message for operators.
 * https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/vim.fault.VimFault.html
 */
export function toIaasError(err: unknown, ctx: FaultContext = {}): IaasError {
  if (err instanceof IaasError) return err;
  const vm = ctx.vm ? `\`${ctx.vm}\`` : "the VM";
  if (err instanceof VimFault) {
    if (err.is("InvalidPowerState")) {
      const existing = (PowerStateWords as Record<string, string>)[String(err.fault.existingState)] ?? String(err.fault.existingState ?? "in another power state");
      return new IaasError("IAAS_INVALID_POWER_STATE", `Cannot ${ctx.action ?? "do that"}: ${vm} is already ${existing}.`, { cause: err });
    }
    if (err.is("ToolsUnavailable")) {
      return new IaasError("IAAS_TOOLS_UNAVAILABLE", `Cannot ${ctx.action ?? "do that"}: VMware Tools is not running in ${vm}. Use \`power off\` or \`power reset\` instead.`, { cause: err });
    }
    if (err.is("TaskInProgress")) return new IaasError("IAAS_TASK_IN_PROGRESS", `Another task is running on ${vm}; try again when it has finished.`, { cause: err });
    if (err.is("InvalidState")) return new IaasError("IAAS_INVALID_STATE", `Cannot ${ctx.action ?? "do that"}: ${vm} is in a state that does not allow it (vCenter: ${err.faultType}).`, { cause: err });
    if (err.is("ManagedObjectNotFound")) return new IaasError("IAAS_NOT_FOUND", `${ctx.vm ? vm : "The object"} no longer exists in vCenter.`, { cause: err });
    if (err.is("DuplicateName")) return new IaasError("IAAS_DUPLICATE_NAME", `A VM named ${vm} already exists.`, { cause: err });
    if (err.is("InsufficientResourcesFault")) return new IaasError("IAAS_INSUFFICIENT_RESOURCES", `vCenter does not have the resources for this (${err.faultType}).`, { cause: err });
    if (err.is("InvalidLogin") || err.is("NotAuthenticated") || err.is("NoPermission")) {
      return new IaasError("IAAS_VCENTER_AUTH", `vCenter refused the proxy's credentials or permissions (${err.faultType}).`, { cause: err });
    }
    if (err.is("MethodNotFound") || err.is("NotSupported") || err.is("NotImplemented")) {
      return new IaasError("IAAS_NOT_SUPPORTED", `${capital(ctx.action ?? "this operation")} is not supported by this vCenter (${err.faultType}).`, { cause: err });
    }
    if (err.is("InvalidArgument") || err.is("InvalidVmConfig") || err.is("InvalidRequest")) {
      const prop = err.fault.invalidProperty ?? err.fault.property;
      return new IaasError("IAAS_INVALID_ARGUMENT", `vCenter rejected the request (${err.faultType}${prop ? `: ${String(prop)}` : ""}).`, { cause: err });
    }
    return new IaasError("IAAS_VCENTER_FAULT", `vCenter reported ${err.faultType}${err.faultString ? `: ${err.faultString}` : ""}.`, { cause: err, retryable: err.retryable });
  }
  if (err instanceof TimeoutError) {
    return new IaasError("IAAS_TIMEOUT", `vCenter did not finish ${ctx.action ? `the ${ctx.action}` : "the operation"} in time (${Math.round(err.timeoutMs / 1000)} s); it may still complete.`, { cause: err });
  }
  if (err instanceof TransportError) return new IaasError("IAAS_VCENTER_UNAVAILABLE", "vCenter cannot be reached right now.", { cause: err });
  if (err instanceof ValidationError) return new IaasError("IAAS_INVALID_ARGUMENT", `Invalid request to vCenter: ${err.message}.`, { cause: err });
  if (err instanceof ProtocolError) return new IaasError("IAAS_VCENTER_FAULT", "vCenter sent an answer the proxy could not understand.", { cause: err });
  return IaasError.from(err);
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
