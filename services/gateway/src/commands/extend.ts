import { LeaseCommandSchema, formatDuration } from "@iaas/contracts";
import { code } from "../presentation/mrkdwn.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { RecordOf } from "./verb.js";

/**
 * `/iaas extend <vm> [duration] [power=on]`: the lease ends `duration` from now (the policy's
 * default when not given); longer than `leases.max` needs an approval. The owner, the team and
 * admins (`lease.extend`, scoped); lease-keeper checks it all again.
 */
export const extend: RecordOf<"extend"> = {
  kind: "action",
  ids: ["lease.extend"],
  label: () => "lease.extend",
  vm: (cmd) => cmd.vm,
  precheck: () => undefined,
  target: (cmd) => ({ vm: cmd.vm, id: "lease.extend" }),
  approvalFacts: (cmd, { policy }) => ({ command: "lease.extend", vm: cmd.vm, leaseMs: cmd.durationMs ?? policy.leases.default }),
  command: (cmd, base) =>
    LeaseCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "lease", action: "extend", vm: cmd.vm, ...(cmd.durationMs !== undefined ? { durationMs: cmd.durationMs } : {}), ...(cmd.powerOn ? { powerOn: true } : {}) }),
  doing: (cmd) => `Extending the lease of ${code(cmd.vm)}${inWords(cmd.vcenter)}${cmd.durationMs !== undefined ? ` to ${formatDuration(cmd.durationMs)} from now` : ""}${cmd.powerOn ? " and powering it on" : ""}`,
};
