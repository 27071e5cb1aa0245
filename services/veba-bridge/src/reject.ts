import { oneLine, type ErrorCode } from "@iaas/contracts";

/** Why a request was refused; also the `reason` label of `iaas_bridge_rejects_total`. */
export const RejectReasons = [
  "unauthorized",
  "too_large",
  "unsupported_media_type",
  "not_cloudevent",
  "bad_json",
  "bad_specversion",
  "missing_attribute",
  "invalid_cloudevent",
  "unknown_type",
  "bad_event_class",
  "bad_data",
  "missing_key",
  "not_found",
  "method_not_allowed",
  "too_deep",
  "too_many_values",
  "busy",
] as const;
export type RejectReason = (typeof RejectReasons)[number];

/**
 * A request the bridge refuses: for good with a 4xx (VEBA must not retry it), or for now with a
 * 503 and Retry-After (`busy`: the bridge holds as many request bytes as it may). The code comes
 * from the one error catalogue; the HTTP status and `reason` say precisely what was wrong.
 */
export class Rejection extends Error {
  readonly code: ErrorCode;

  constructor(
    readonly status: 400 | 401 | 404 | 405 | 413 | 415 | 503,
    readonly reason: RejectReason,
    message: string,
  ) {
    super(oneLine(message).slice(0, 500));
    this.name = "Rejection";
    // The catalogue has no authentication, size or media-type codes (yet): the nearest ones,
    // with the HTTP status and `reason` carrying the precise cause.
    this.code = status === 503 ? "IAAS_UNAVAILABLE" : status === 401 ? "IAAS_NOT_ALLOWED" : status === 413 ? "IAAS_LIMIT_EXCEEDED" : status === 404 ? "IAAS_NOT_FOUND" : "IAAS_BAD_REQUEST";
  }

  toJSON(): { error: { code: ErrorCode; reason: RejectReason; message: string } } {
    return { error: { code: this.code, reason: this.reason, message: this.message } };
  }
}

export function bad(reason: RejectReason, message: string): Rejection {
  return new Rejection(400, reason, message);
}
