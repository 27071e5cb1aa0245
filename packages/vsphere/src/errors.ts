import type { MoRef } from "./types.js";

/**
 * Ancestors of the vSphere fault types this client meets, so `fault.is("InvalidState")` also matches an
 * InvalidPowerState. Source: the vim25 WSDL type hierarchy (see the "Faults" pages of the vSphere Web
 * Services API reference). Types not listed here match only themselves and MethodFault.
 */
const FAULT_PARENT: Record<string, string> = {
  VimFault: "MethodFault",
  RuntimeFault: "MethodFault",
  InvalidProperty: "MethodFault",
  InvalidCollectorVersion: "MethodFault",
  InvalidState: "VimFault",
  InvalidPowerState: "InvalidState",
  InvalidLogin: "VimFault",
  DuplicateName: "VimFault",
  InsufficientResourcesFault: "VimFault",
  TaskInProgress: "VimFault",
  ToolsUnavailable: "VimFault",
  NotFound: "VimFault",
  AlreadyExists: "VimFault",
  InvalidName: "VimFault",
  Timedout: "VimFault",
  VmConfigFault: "VimFault",
  InvalidVmConfig: "VmConfigFault",
  InvalidDatastore: "VimFault",
  InvalidDatastorePath: "InvalidDatastore",
  FileFault: "VimFault",
  FileNotFound: "FileFault",
  SecurityError: "RuntimeFault",
  NoPermission: "SecurityError",
  NotAuthenticated: "NoPermission",
  ManagedObjectNotFound: "RuntimeFault",
  InvalidRequest: "RuntimeFault",
  MethodNotFound: "InvalidRequest",
  InvalidType: "InvalidRequest",
  InvalidArgument: "RuntimeFault",
  NotSupported: "RuntimeFault",
  RequestCanceled: "RuntimeFault",
  SystemError: "RuntimeFault",
  HostCommunication: "RuntimeFault",
  HostNotConnected: "HostCommunication",
  HostNotReachable: "HostCommunication",
  NotEnoughLicenses: "RuntimeFault",
};

/** Faults worth retrying later with the same arguments (the object is busy or a host is briefly unreachable). */
const RETRYABLE_FAULTS = new Set(["TaskInProgress", "HostCommunication"]);

/** The fault type and its ancestors, most specific first. */
export function faultAncestry(faultType: string): string[] {
  const chain = [faultType];
  let t = FAULT_PARENT[faultType];
  while (t !== undefined && !chain.includes(t)) {
    chain.push(t);
    t = FAULT_PARENT[t];
  }
  if (!chain.includes("MethodFault")) chain.push("MethodFault");
  return chain;
}

/** Base of every error this package throws; `code` is stable and safe to switch on. */
export abstract class VsphereError extends Error {
  abstract readonly code: string;
  /** True when the same call may succeed if tried again later. */
  abstract readonly retryable: boolean;
}

/**
 * A vSphere fault: a SOAP fault from a method, a task's `info.error`, or a per-object `missingSet` entry.
 * Match on `faultType` (the xsi:type, e.g. "InvalidPowerState") or `is()`, never on the message.
 */
export class VimFault extends VsphereError {
  readonly code = "VSPHERE_FAULT";
  override readonly name = "VimFault";
  /** The fault's xsi:type, e.g. "InvalidPowerState". */
  readonly faultType: string;
  /** The decoded fault object: `existingState`, `requestedState`, `invalidProperty`, `obj`, ... plus `_type`. */
  readonly fault: Record<string, unknown>;
  /** SOAP `faultstring` or task `localizedMessage`; often empty (NotAuthenticated has none). */
  readonly faultString: string;
  /** The method that failed, when known (e.g. "PowerOnVM_Task"). */
  readonly method: string | undefined;
  /** The task whose `info.error` this is, for task faults. */
  readonly task: MoRef | undefined;

  constructor(
    faultType: string,
    fault: Record<string, unknown>,
    faultString: string,
    ctx: { method?: string | undefined; task?: MoRef | undefined } = {},
  ) {
    const where = ctx.method ? `${ctx.method}: ` : "";
    super(`${where}${faultType}${faultString ? `: ${faultString}` : ""}`);
    this.faultType = faultType;
    this.fault = fault;
    this.faultString = faultString;
    this.method = ctx.method;
    this.task = ctx.task;
  }

  get retryable(): boolean {
    return faultAncestry(this.faultType).some((t) => RETRYABLE_FAULTS.has(t));
  }

  /** True when this fault is `faultType` or one of its subtypes (InvalidPowerState is an InvalidState). */
  is(faultType: string): boolean {
    return faultAncestry(this.faultType).includes(faultType);
  }
}

/** The request did not complete: connection refused or closed, TLS, an HTTP status without a SOAP body. Retryable. */
export class TransportError extends VsphereError {
  readonly code = "VSPHERE_TRANSPORT";
  override readonly name = "TransportError";
  readonly retryable = true;
  /** HTTP status when a response arrived. */
  readonly status: number | undefined;
  readonly method: string | undefined;
  constructor(message: string, opts: { cause?: unknown; status?: number | undefined; method?: string | undefined } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status;
    this.method = opts.method;
  }
}

/**
 * A deadline passed: a call got no response within its timeout, or a task did not finish in time.
 * For a task, `task` is set and the task may still complete in vCenter. Retryable with care: the
 * operation may have been carried out.
 */
export class TimeoutError extends VsphereError {
  readonly code = "VSPHERE_TIMEOUT";
  override readonly name = "TimeoutError";
  readonly retryable = true;
  readonly timeoutMs: number;
  readonly method: string | undefined;
  readonly task: MoRef | undefined;
  constructor(
    message: string,
    opts: { timeoutMs: number; method?: string | undefined; task?: MoRef | undefined; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.timeoutMs = opts.timeoutMs;
    this.method = opts.method;
    this.task = opts.task;
  }
}

/** The response could not be understood (not SOAP, or a value of an unexpected shape). Not retryable. */
export class ProtocolError extends VsphereError {
  readonly code = "VSPHERE_PROTOCOL";
  override readonly name = "ProtocolError";
  readonly retryable = false;
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
  }
}

/**
 * The client refused to send a request it knows is invalid, e.g. a CreateVM_Task without a pool or
 * on a datastore that does not exist (the simulator's handler crashes on those; vCenter faults). Not retryable.
 */
export class ValidationError extends VsphereError {
  readonly code = "VSPHERE_INVALID_ARGUMENT";
  override readonly name = "ValidationError";
  readonly retryable = false;
  /** The offending argument, as a property path such as `config.files.vmPathName`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

export function isVimFault(err: unknown, faultType?: string): err is VimFault {
  return err instanceof VimFault && (faultType === undefined || err.is(faultType));
}
