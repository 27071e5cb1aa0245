import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

// Paths pino blanks wherever they appear in a log object. Secrets must never reach logs;
// this is the net under the rule, not the rule itself (we don't log config or headers whole).
const REDACT = [
  "password",
  "*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "*.headers.cookie",
  "cookie",
  "*.cookie",
  "responseUrl",
  "*.responseUrl",
  "response_url",
  "*.response_url",
  "VCENTER_PASSWORD",
  "NATS_PASSWORD",
  "SLACK_SIGNING_SECRET",
  "SLACK_BOT_TOKEN",
  "SLACK_APP_TOKEN",
  "BRIDGE_PASSWORD",
  "BRIDGE_TOKEN",
];

export function createLogger(service: string, level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    destination,
  );
}
