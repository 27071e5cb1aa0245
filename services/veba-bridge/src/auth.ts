import { createHash, timingSafeEqual } from "node:crypto";
import type { BridgeAuth } from "./config.js";

/** Compares secrets in constant time: both sides are hashed first, so their lengths leak nothing either. */
function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function authRequired(auth: BridgeAuth): boolean {
  return auth.username !== undefined || auth.token !== undefined;
}

/** The WWW-Authenticate challenges for a 401, one per configured scheme. */
export function challenges(auth: BridgeAuth): string[] {
  return [...(auth.username !== undefined ? ['Basic realm="veba-bridge", charset="UTF-8"'] : []), ...(auth.token !== undefined ? ['Bearer realm="veba-bridge"'] : [])];
}

/**
 * Checks the Authorization header: Basic when BRIDGE_USERNAME/BRIDGE_PASSWORD are set, Bearer when
 * BRIDGE_TOKEN is set (either, when both are). Nothing is required when none is set.
 */
export function isAuthorized(header: string | undefined, auth: BridgeAuth): boolean {
  if (!authRequired(auth)) return true;
  if (!header) return false;
  const m = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  const credentials = m[2]!;
  if (scheme === "basic" && auth.username !== undefined) {
    const decoded = Buffer.from(credentials, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    // Both halves are always compared, so timing does not tell which one was wrong.
    const userOk = safeEqual(decoded.slice(0, colon), auth.username);
    const passOk = safeEqual(decoded.slice(colon + 1), auth.password ?? "");
    return userOk && passOk;
  }
  if (scheme === "bearer" && auth.token !== undefined) return safeEqual(credentials, auth.token);
  return false;
}
