import { auditMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const audit: RecordOf<"audit"> = {
  kind: "remote",
  ids: ["audit"],
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { audit: trail }) => {
    const { records, scanned } = await trail.latest({ vm: cmd.vm });
    trail.succeeded("audit", cmd.vm, `audit answered with ${records.length} records`);
    return auditMessage(records, cmd.vm, scanned);
  },
};
