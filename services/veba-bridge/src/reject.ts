import { ErrorCatalogue, oneLine, type ErrorCode } from "@iaas/contracts";

/**
 * Why a request was refused, each with its one catalogue code (which gives the HTTP status);
 * the reason is also the `reason` label of `iaas_bridge_rejects_total` and says precisely what was
 * wrong where the code is broad (every kind of malformed CloudEvent is IAAS_BAD_REQUEST).
 */
export const RejectCodes = {
  unauthorized: "IAAS_UNAUTHENTICATED",
  too_large: "IAAS_TOO_LARGE",
  too_many_values: "IAAS_TOO_LARGE",
  unsupported_media_type: "IAAS_UNSUPPORTED_MEDIA_TYPE",
  not_cloudevent: "IAAS_BAD_REQUEST",
  bad_json: "IAAS_BAD_REQUEST",
  too_deep: "IAAS_BAD_REQUEST",
  bad_specversion: "IAAS_BAD_REQUEST",
  missing_attribute: "IAAS_BAD_REQUEST",
  invalid_cloudevent: "IAAS_BAD_REQUEST",
  unknown_type: "IAAS_BAD_REQUEST",
  bad_event_class: "IAAS_BAD_REQUEST",
  bad_data: "IAAS_BAD_REQUEST",
  missing_key: "IAAS_BAD_REQUEST",
  not_found: "IAAS_NOT_FOUND",
  method_not_allowed: "IAAS_METHOD_NOT_ALLOWED",
  busy: "IAAS_UNAVAILABLE",
} as const satisfies Record<string, ErrorCode>;
export type RejectReason = keyof typeof RejectCodes;
export const RejectReasons = Object.keys(RejectCodes) as RejectReason[];

/**
 * A request the bridge refuses: for good with a 4xx (VEBA must not retry it), or for now with a
 * 503 and Retry-After (`busy`: the bridge holds as many request bytes as it may).
 */
export class Rejection extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(oneLine(message).slice(0, 500));
    this.name = "Rejection";
    this.code = RejectCodes[reason];
    this.status = ErrorCatalogue[this.code].status;
  }

  toJSON(): { error: { code: ErrorCode; reason: RejectReason; message: string } } {
    return { error: { code: this.code, reason: this.reason, message: this.message } };
  }
}

export function bad(reason: RejectReason, message: string): Rejection {
  return new Rejection(reason, message);
}
