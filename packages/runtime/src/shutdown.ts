import type { Logger } from "./log.js";

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits. A second signal exits at once.
 * Stopping means: stop fetching, let in-flight work finish, drain NATS.
 */
export function onShutdown(log: Logger, stop: () => Promise<void>, graceMs = 25_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, graceMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/** For main.ts: a config or policy error is one line on stderr and exit 1; anything else is logged as fatal. */
export function fatal(log: Logger | undefined, err: unknown): never {
  const e = err as Error;
  // Configuration and policy errors are the operator's to fix: one line naming the variable or field.
  const config = e?.name === "ConfigError" || e?.name === "PolicyError";
  if (config || !log) {
    process.stderr.write(`${config ? "" : "fatal: "}${e?.message ?? String(err)}\n`);
  } else {
    log.fatal({ err }, "fatal error");
  }
  process.exit(1);
}
