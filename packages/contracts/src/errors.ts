import { z } from "zod";

/**
 * The one error catalogue. `status` is what travels in the micro-service error header
 * (HTTP-like), `retryable` says whether trying the same thing again later can succeed,
 * `message` is the default user-facing text, `fix` feeds docs/errors.md.
 */
export const ErrorCatalogue = {
  IAAS_BAD_REQUEST: { status: 400, retryable: false, message: "The request is not valid.", fix: "The message did not match its schema; the error names the field. Fix the sender." },
  IAAS_UNKNOWN_COMMAND: { status: 400, retryable: false, message: "Unknown command.", fix: "Run `/iaas help` for the commands you may use." },
  IAAS_SYNTAX: { status: 400, retryable: false, message: "The command is not written correctly.", fix: "The reply shows the command's usage; run `/iaas help <command>`." },
  IAAS_BAD_VM_NAME: { status: 400, retryable: false, message: "That is not a valid VM name.", fix: "Use the exact VM name or an inventory path starting with `/`; wildcards are not accepted." },
  IAAS_NOT_ALLOWED: { status: 403, retryable: false, message: "You are not allowed to do that.", fix: "Your role in the policy does not include this command; ask an IT admin." },
  IAAS_PROTECTED_VM: { status: 403, retryable: false, message: "That VM is protected.", fix: "The policy protects this VM from deletion, power-off, reset, suspend and resize; ask an IT admin." },
  IAAS_QUOTA_EXCEEDED: { status: 403, retryable: false, message: "That is over your quota or your team's.", fix: "The message gives the figures (VMs, vCPU, memory, disk; requests in flight count); `/iaas quota` shows use and limits. Delete a VM you no longer need, or ask an IT admin to raise the quota." },
  IAAS_LIMIT_EXCEEDED: { status: 400, retryable: false, message: "That is more than the policy allows.", fix: "Choose a size or value within the limits shown by `/iaas sizes`." },
  IAAS_UNKNOWN_SIZE: { status: 400, retryable: false, message: "There is no VM size by that name.", fix: "The message lists the sizes; `/iaas sizes` shows them with their CPU, memory and disk." },
  IAAS_NAME_NOT_ALLOWED: { status: 400, retryable: false, message: "That name cannot be used for a new VM.", fix: "The message gives the policy's naming rule; choose a name that follows it (names like `prod-*` are reserved for protected VMs)." },
  IAAS_APPROVAL_REQUIRED: { status: 403, retryable: false, message: "This needs an approval first.", fix: "The policy's `approvals` rules match this command: run it from Slack, where it waits for an approver's Approve, or publish it with the `approvalId` of an approved request for exactly this command." },
  IAAS_APPROVAL_INVALID: { status: 403, retryable: false, message: "That approval does not allow this command.", fix: "An approval holds for one command only (verb, VM, size or resources, lease, requester), once it is approved and before it is used; `/iaas approvals` shows yours." },
  IAAS_APPROVAL_DECIDED: { status: 409, retryable: false, message: "This request was already decided or has expired.", fix: "The card shows who decided it and when; the requester may ask again." },
  IAAS_NOT_APPROVER: { status: 403, retryable: false, message: "You may not decide this request.", fix: "Only the approvers the rule names decide it, and never the requester; the card names them." },
  IAAS_NO_LEASE: { status: 409, retryable: false, message: "That VM has no lease.", fix: "`/iaas lease <vm>` shows it; an IT admin gives a VM a lease with `/iaas lease <vm> set 30d`." },
  IAAS_SNAPSHOT_LIMIT: { status: 409, retryable: false, message: "That VM has as many snapshots as the policy allows.", fix: "Delete one with `/iaas snapshot delete <vm> <name>` (`/iaas snapshot list <vm>` shows them), then try again." },
  IAAS_SNAPSHOT_NOT_FOUND: { status: 404, retryable: false, message: "No snapshot by that name on that VM.", fix: "`/iaas snapshot list <vm>` shows the VM's snapshots; names are exact." },
  IAAS_SNAPSHOT_EXISTS: { status: 409, retryable: false, message: "The VM already has a snapshot by that name.", fix: "Choose another name, or leave the name out (iaas then names it by the time)." },
  IAAS_RATE_LIMITED: { status: 429, retryable: true, message: "Too many commands; slow down.", fix: "Wait a minute and try again." },
  IAAS_CONFIRMATION_EXPIRED: { status: 410, retryable: false, message: "This confirmation has expired.", fix: "Run the command again." },
  IAAS_UNKNOWN_VCENTER: { status: 400, retryable: false, message: "There is no vCenter by that name.", fix: "`vc=` takes one of the gateway's vCenters: `default` or an id of VCENTERS; the message lists them. Leave `vc=` out for the default vCenter." },
  IAAS_VM_NOT_FOUND: { status: 404, retryable: false, message: "No VM by that name.", fix: "Check the name with `/iaas list`; names are exact and case-sensitive." },
  IAAS_VM_AMBIGUOUS: { status: 409, retryable: false, message: "More than one VM has that name.", fix: "Use the inventory path (for example `/DC0/vm/name`) shown in the reply." },
  IAAS_NOT_FOUND: { status: 404, retryable: false, message: "The object was not found.", fix: "It was deleted or never existed; check the name." },
  IAAS_INVALID_POWER_STATE: { status: 409, retryable: false, message: "The VM is not in a power state that allows this.", fix: "Check the VM's power state with `/iaas info <vm>`." },
  IAAS_INVALID_STATE: { status: 409, retryable: false, message: "The object is in a state that does not allow this.", fix: "For example a template cannot be powered on; deploy it instead." },
  IAAS_TOOLS_UNAVAILABLE: { status: 409, retryable: false, message: "VMware Tools is not running in the VM.", fix: "Guest shutdown and reboot need VMware Tools; use `power off` or `power reset` instead." },
  IAAS_DUPLICATE_NAME: { status: 409, retryable: false, message: "A VM with that name already exists.", fix: "Choose another name." },
  IAAS_INVALID_ARGUMENT: { status: 400, retryable: false, message: "vCenter rejected an argument.", fix: "The message names the argument; check the policy's placement and sizes." },
  IAAS_INSUFFICIENT_RESOURCES: { status: 409, retryable: false, message: "Not enough resources in vCenter for this.", fix: "Choose a smaller size or ask an IT admin to free capacity." },
  IAAS_TASK_IN_PROGRESS: { status: 409, retryable: true, message: "Another task is running on that VM.", fix: "Wait for it to finish and try again." },
  IAAS_NOT_SUPPORTED: { status: 501, retryable: false, message: "Not supported by this vCenter.", fix: "The vCenter does not implement this operation." },
  IAAS_HOT_ADD_DISABLED: { status: 409, retryable: false, message: "The VM is powered on and does not allow adding that resource while running.", fix: "Power the VM off first, or ask an IT admin to enable CPU/memory hot-add." },
  IAAS_VCENTER_AUTH: { status: 502, retryable: false, message: "vCenter refused our credentials.", fix: "An operator must fix VCENTER_USERNAME / VCENTER_PASSWORD for vcenter-proxy." },
  IAAS_VCENTER_UNAVAILABLE: { status: 503, retryable: true, message: "vCenter cannot be reached right now.", fix: "Transient: it is retried. If it lasts, check vCenter and the proxy's VCENTER_URL." },
  IAAS_VCENTER_FAULT: { status: 502, retryable: false, message: "vCenter reported an error.", fix: "The message names vCenter's fault type; see the vSphere API reference." },
  IAAS_TIMEOUT: { status: 504, retryable: true, message: "The operation did not finish in time.", fix: "vCenter may still complete it; check with `/iaas info <vm>` before retrying." },
  IAAS_INTERRUPTED: { status: 409, retryable: false, message: "An earlier attempt at this command was interrupted; it is not repeated automatically.", fix: "Check the VM with `/iaas info <vm>`, then run the command again if it is still needed." },
  IAAS_UNAUTHENTICATED: { status: 401, retryable: false, message: "Credentials are missing or wrong.", fix: "Send the credentials the service is configured with (veba-bridge: BRIDGE_TOKEN as a bearer token, or BRIDGE_USERNAME/BRIDGE_PASSWORD)." },
  IAAS_METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: "That HTTP method is not taken here.", fix: "The Allow header names the methods the path takes." },
  IAAS_TOO_LARGE: { status: 413, retryable: false, message: "The request is too large.", fix: "It is over a size bound (bytes, JSON nesting or values, NATS max_payload); the message names it. Send less at once, e.g. smaller batches." },
  IAAS_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: "That content type is not taken here.", fix: "veba-bridge takes application/json with ce-* headers, application/cloudevents+json or application/cloudevents-batch+json." },
  IAAS_UNAVAILABLE: { status: 503, retryable: true, message: "A backend service is not available.", fix: "Transient: a service or NATS is restarting. If it lasts, check `nats micro ls`." },
  IAAS_INTERNAL: { status: 500, retryable: false, message: "Something went wrong on our side.", fix: "A bug: the logs carry the request id and the cause." },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string; fix: string }>;

export type ErrorCode = keyof typeof ErrorCatalogue;
export const ErrorCodeSchema = z.enum(Object.keys(ErrorCatalogue) as [ErrorCode, ...ErrorCode[]]);

/** A coded error as it travels in messages. */
export const CodedErrorSchema = z.strictObject({
  code: ErrorCodeSchema,
  message: z.string().min(1).max(2000),
  retryable: z.boolean(),
});
export type CodedError = z.infer<typeof CodedErrorSchema>;

/** The error type thrown across the codebase. Unknown errors are wrapped with the cause kept. */
export class IaasError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(oneLine(message ?? ErrorCatalogue[code].message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "IaasError";
    this.code = code;
    this.retryable = options?.retryable ?? ErrorCatalogue[code].retryable;
  }

  get status(): number {
    return ErrorCatalogue[this.code].status;
  }

  toJSON(): CodedError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }

  static from(err: unknown, fallback: ErrorCode = "IAAS_INTERNAL"): IaasError {
    if (err instanceof IaasError) return err;
    return new IaasError(fallback, undefined, { cause: err });
  }

  static fromCoded(e: CodedError): IaasError {
    return new IaasError(e.code, e.message, { retryable: e.retryable });
  }
}

/**
 * Service-error descriptions must be one line: a `\r` or `\n` in the Nats-Service-Error header
 * reaches the caller as code 500 instead. So must Slack one-liners.
 */
export function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, "; ").trim();
}

/** zod issues as one line: `field: message; other: message`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}
