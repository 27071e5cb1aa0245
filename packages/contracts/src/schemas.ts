import { z } from "zod";
import { CommandSchema, PowerCommandSchema, ResultSchema, VmCommandSchema } from "./commands.js";
import { CodedErrorSchema } from "./errors.js";
import { ProxyEndpoints } from "./proxy.js";
import { AuditSchema } from "./audit.js";
import { ApprovalRecordSchema } from "./approvals.js";
import { NoticeSchema } from "./notices.js";
import { VsphereEventSchema } from "./events.js";

/** Every wire schema by a stable name: the JSON Schemas in packages/contracts/schemas/ are generated from this. */
export function wireSchemas(): Record<string, z.ZodType> {
  const out: Record<string, z.ZodType> = {
    "command": CommandSchema,
    "command.power": PowerCommandSchema,
    "command.vm": VmCommandSchema,
    "result": ResultSchema,
    "error": CodedErrorSchema,
    "audit": AuditSchema,
    /** A value of the iaas_approvals bucket. */
    "approval": ApprovalRecordSchema,
    "notice": NoticeSchema,
    "event.vsphere": VsphereEventSchema,
  };
  for (const ep of Object.values(ProxyEndpoints)) {
    out[`proxy.${ep.subject}.request`] = ep.request;
    out[`proxy.${ep.subject}.response`] = ep.response;
  }
  return out;
}
