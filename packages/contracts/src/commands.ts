import { z } from "zod";
import { ActorSchema, CommandIdSchema, IsoTimeSchema, VmRefSchema, VmSummarySchema } from "./common.js";
import { CodedErrorSchema } from "./errors.js";
import { CommandAreas } from "./subjects.js";

export const PowerActionSchema = z.enum(CommandAreas.power);
export type PowerAction = z.infer<typeof PowerActionSchema>;

const commandBase = {
  id: CommandIdSchema,
  actor: ActorSchema,
  issuedAt: IsoTimeSchema,
};

/** `iaas.cmd.power.<action>`: the action in the body must equal the subject's. */
export const PowerCommandSchema = z.strictObject({
  ...commandBase,
  area: z.literal("power"),
  action: PowerActionSchema,
  vm: VmRefSchema,
});
export type PowerCommand = z.infer<typeof PowerCommandSchema>;

export const CommandSchema = z.discriminatedUnion("area", [PowerCommandSchema]);
export type Command = z.infer<typeof CommandSchema>;

/** `iaas.result.<id>`: progress messages, then exactly one final result (succeeded or failed). */
export const ResultSchema = z.discriminatedUnion("status", [
  z.strictObject({
    id: CommandIdSchema,
    status: z.literal("progress"),
    command: z.string(),
    message: z.string().max(3000),
    at: IsoTimeSchema,
  }),
  z.strictObject({
    id: CommandIdSchema,
    status: z.literal("succeeded"),
    command: z.string(),
    message: z.string().max(3000),
    vm: VmSummarySchema.optional(),
    at: IsoTimeSchema,
  }),
  z.strictObject({
    id: CommandIdSchema,
    status: z.literal("failed"),
    command: z.string(),
    error: CodedErrorSchema,
    at: IsoTimeSchema,
  }),
]);
export type Result = z.infer<typeof ResultSchema>;
export type FinalResult = Exclude<Result, { status: "progress" }>;
