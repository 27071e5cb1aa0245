import { IaasError, quote, type ObjRef, type RemediationRule } from "@iaas/contracts";
import type { Policy } from "@iaas/policy";
import type { Logger } from "@iaas/runtime";
import type { Reporter } from "./report.js";
import type { RemediationState } from "./state.js";
import type { VcenterPort } from "./vcenter.js";

/** What every rule works with. */
export interface RuleContext {
  policy: Policy;
  vc: VcenterPort;
  state: RemediationState;
  report: Reporter;
  now(): number;
  log: Logger;
}

/** A remediation alarm that turned red, still current when it is handled. */
export interface AlarmTrigger {
  rule: RemediationRule;
  /** The event's identity: its Nats-Msg-Id (`<source>#<key>`). */
  eventId: string;
  alarm: string;
  /** The alarmed object (a VM or a datastore). */
  entity: ObjRef & { name: string };
}

/** `alarm \`VM CPU Usage\``: how notices name the alarm that fired. */
export function alarmText(t: Pick<AlarmTrigger, "alarm">): string {
  return `alarm ${quote(t.alarm)}`;
}

/** Failures worth another delivery of the event (vCenter or the proxy briefly away); the rest are decisions. */
export function isRetryable(err: unknown): boolean {
  return err instanceof IaasError && err.retryable;
}

/** One line about an error for a notice: the coded message, never a stack (plain text; the gateway escapes it). */
export function errText(err: unknown): string {
  const e = IaasError.from(err);
  return `${e.message} (${e.code})`;
}
