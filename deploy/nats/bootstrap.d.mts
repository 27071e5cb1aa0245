// Types for bootstrap.mjs (plain ESM so it runs in the image without a build step).
import type { NatsConnection } from "@nats-io/transport-node";
import type * as runtime from "@iaas/runtime";
import type * as contracts from "@iaas/contracts";

/** Creates every stream, durable consumer and KV bucket in contracts that does not exist yet. */
export declare function bootstrap(deps: {
  nc: NatsConnection;
  runtime: typeof runtime;
  contracts: typeof contracts;
  /** Stream and bucket replicas: 3 on a three-node cluster. */
  replicas?: number;
  log: runtime.Logger;
}): Promise<{ streams: string[]; consumers: string[]; buckets: string[] }>;
