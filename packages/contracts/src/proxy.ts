import { z } from "zod";
import { VmRefSchema, VmSummarySchema } from "./common.js";
import { PowerActionSchema } from "./commands.js";

/**
 * vcenter-proxy: a NATS micro service; request/reply endpoints under `vcenter.`.
 * Errors come back as micro-service errors: `Nats-Service-Error-Code` (HTTP-like status) and
 * `Nats-Service-Error` (`<IAAS_CODE>: <message>`), with the CodedError JSON as the body.
 */
const optionalVcenter = { vcenter: z.string().regex(/^[a-z0-9-]{1,32}$/).optional() };

export const ProxyEndpoints = {
  vmGet: {
    name: "vm-get",
    subject: "vcenter.vm.get",
    request: z.strictObject({ ...optionalVcenter, vm: VmRefSchema }),
    response: z.strictObject({ vm: VmSummarySchema }),
  },
  vmPower: {
    name: "vm-power",
    subject: "vcenter.vm.power",
    request: z.strictObject({ ...optionalVcenter, vm: VmRefSchema, action: PowerActionSchema, timeoutMs: z.number().int().min(1000).max(3_600_000).optional() }),
    response: z.strictObject({ vm: VmSummarySchema }),
  },
} as const;

export type ProxyEndpointName = keyof typeof ProxyEndpoints;
export type ProxyRequest<E extends ProxyEndpointName> = z.infer<(typeof ProxyEndpoints)[E]["request"]>;
export type ProxyResponse<E extends ProxyEndpointName> = z.infer<(typeof ProxyEndpoints)[E]["response"]>;
