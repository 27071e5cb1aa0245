import { ProxyEndpoints, SnapshotCommandSchema } from "@iaas/contracts";
import { fields } from "../presentation/blocks.js";
import { code } from "../presentation/mrkdwn.js";
import { snapshotsMessage } from "../presentation/views.js";
import type { ParsedCommand } from "./parse.js";
import { inVcenter } from "@iaas/runtime";
import { inWords } from "./vcenter.js";
import type { ActionVerb, QueryVerb, RecordOf } from "./verb.js";

type Snap = Extract<ParsedCommand, { verb: "snapshot" }>;
/** A form of the command: `Of<"create" | "revert">` (they share one shape), `Of<"list">`, `Of<"delete">`. */
type Of<A extends Snap["action"]> = Extract<Snap, { action: A }>;

/** `snapshot list <vm>`: a query of vcenter-proxy, within the caller's scope on the VM. */
const list: QueryVerb<Of<"list">> = {
  kind: "remote",
  ids: ["snapshot.list"],
  label: () => "snapshot.list",
  vm: (cmd) => cmd.vm,
  answer: async (cmd, { ask, policy, actorOn }) => {
    const { vm, snapshots } = await ask(ProxyEndpoints.snapshotList, { vm: cmd.vm, ...inVcenter(cmd.vcenter) });
    policy.authorizeOn(actorOn(vm.team), "snapshot.list", vm);
    return snapshotsMessage(vm, snapshots, policy.snapshots.maxPerVm);
  },
};

/**
 * create, revert, delete: actions with a `target`, so the door looks the VM up and refuses in the
 * ack what is not the caller's (scope) or is protected (revert and delete); vm-lifecycle checks
 * everything again, with the snapshot limit and names, where the snapshot is made.
 */
const create: ActionVerb<Of<"create" | "revert">> = {
  kind: "action",
  ids: ["snapshot.create"],
  label: () => "snapshot.create",
  vm: (cmd) => cmd.vm,
  precheck: () => undefined,
  target: (cmd) => ({ vm: cmd.vm, id: "snapshot.create" }),
  command: (cmd, base) => SnapshotCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "snapshot", action: "create", vm: cmd.vm, ...(cmd.name !== undefined ? { name: cmd.name } : {}) }),
  doing: (cmd) => `Taking a snapshot${cmd.name !== undefined ? ` ${code(cmd.name)}` : ""} of ${code(cmd.vm)}${inWords(cmd.vcenter)}`,
};

const revert: ActionVerb<Of<"create" | "revert">> = {
  kind: "action",
  ids: ["snapshot.revert"],
  label: () => "snapshot.revert",
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => policy.checkProtected("snapshot.revert", { name: cmd.vm }),
  target: (cmd) => ({ vm: cmd.vm, id: "snapshot.revert" }),
  inspect: async (cmd, { vm }) => (vm ? fields([["VM", `${code(vm.name)}${vm.path ? `\n${code(vm.path)}` : ""}`], ["Snapshot", cmd.name !== undefined ? code(cmd.name) : "the current one"]]) : []),
  command: (cmd, base) => SnapshotCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "snapshot", action: "revert", vm: cmd.vm, ...(cmd.name !== undefined ? { name: cmd.name } : {}) }),
  doing: (cmd) => `Reverting ${code(cmd.vm)}${inWords(cmd.vcenter)} to ${cmd.name !== undefined ? `the snapshot ${code(cmd.name)}` : "its current snapshot"}`,
  question: (cmd) => `Revert ${code(cmd.vm)}${inWords(cmd.vcenter)} to ${cmd.name !== undefined ? `the snapshot ${code(cmd.name)}` : "its current snapshot"}? What changed in the VM since that snapshot is lost.`,
};

const del: ActionVerb<Of<"delete">> = {
  kind: "action",
  ids: ["snapshot.delete"],
  label: () => "snapshot.delete",
  vm: (cmd) => cmd.vm,
  precheck: (policy, cmd) => policy.checkProtected("snapshot.delete", { name: cmd.vm }),
  target: (cmd) => ({ vm: cmd.vm, id: "snapshot.delete" }),
  command: (cmd, base) => SnapshotCommandSchema.parse({ ...base, ...inVcenter(cmd.vcenter), area: "snapshot", action: "delete", vm: cmd.vm, name: cmd.name }),
  doing: (cmd) => `Deleting the snapshot ${code(cmd.name)} of ${code(cmd.vm)}${inWords(cmd.vcenter)}`,
};

/** `/iaas snapshot create|list|revert|delete <vm> [name]`: each form its own policy command id. */
export const snapshot: RecordOf<"snapshot"> = {
  kind: "split",
  ids: ["snapshot.list", "snapshot.create", "snapshot.revert", "snapshot.delete"],
  of: (cmd) => {
    switch (cmd.action) {
      case "list":
        return list;
      case "create":
        return create;
      case "revert":
        return revert;
      case "delete":
        return del;
    }
  },
};
