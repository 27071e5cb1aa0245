import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./log.js";
import type { BaseEnv } from "./config.js";
import { inboxPrefixFor } from "@iaas/contracts";

export type { NatsConnection };

const connected = new WeakMap<NatsConnection, boolean>();

/** Readiness: connected now (not closed, draining, or between reconnects). */
export function isNatsConnected(nc: NatsConnection): boolean {
  return !nc.isClosed() && !nc.isDraining() && connected.get(nc) !== false;
}

/**
 * Connects to NATS and keeps reconnecting forever: a NATS restart is an outage to ride out,
 * not a reason to exit. The first connect also waits, so services may start before NATS.
 */
export interface ConnectOptions {
  /**
   * Skip the stack nats.js captures at every request (kept to extend a later timeout's or error's
   * stack): a cost paid by every request, worth dropping in a service whose hot path is a few
   * requests per incoming call. Errors keep their message and cause.
   */
  noAsyncTraces?: boolean;
}

export async function connectNats(env: BaseEnv, name: string, log: Logger, opts: ConnectOptions = {}): Promise<NatsConnection> {
  const auth = env.NATS_CREDS
    ? { authenticator: credsAuthenticator(await readFile(env.NATS_CREDS)) }
    : env.NATS_USER
      ? { user: env.NATS_USER, pass: env.NATS_PASSWORD }
      : {};
  const nc = await connect({
    servers: env.NATS_URL.split(",").map((s) => s.trim()),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    timeout: 10_000,
    // Per-service inbox, so least-privilege users can be limited to their own replies (deploy/nats).
    inboxPrefix: inboxPrefixFor(name),
    ...(opts.noAsyncTraces ? { noAsyncTraces: true } : {}),
    ...auth,
  });
  connected.set(nc, true);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") connected.set(nc, false);
      if (s.type === "reconnect") connected.set(nc, true);
      switch (s.type) {
        case "disconnect":
        case "reconnect":
          log.warn({ nats: s.type, server: "server" in s ? s.server : undefined }, `nats ${s.type}`);
          break;
        case "error":
          // A publish the server denies (a permissions violation) is reported only here, asynchronously:
          // the publish call itself does not fail.
          log.error({ nats: s.type, err: s.error }, "nats error");
          break;
        default:
          break;
      }
    }
  })();
  log.info({ servers: nc.getServer() }, "connected to NATS");
  return nc;
}
