import { z } from "zod";
import { ActorSchema, CommandIdSchema, IsoTimeSchema } from "./common.js";
import { ErrorCodeSchema } from "./errors.js";

/** `iaas.audit.command`: one record per finished command (who, what, when, outcome). */
export const CommandAuditSchema = z.strictObject({
  kind: z.literal("command"),
  id: CommandIdSchema,
  actor: ActorSchema,
  /** `power.off`, `vm.create`, ... */
  command: z.string(),
  /** The VM the command named, if any. */
  vm: z.string().optional(),
  outcome: z.enum(["succeeded", "failed", "rejected"]),
  code: ErrorCodeSchema.optional(),
  message: z.string().max(3000),
  at: IsoTimeSchema,
});
export type CommandAudit = z.infer<typeof CommandAuditSchema>;

export const AuditSchema = z.discriminatedUnion("kind", [CommandAuditSchema]);
export type Audit = z.infer<typeof AuditSchema>;
