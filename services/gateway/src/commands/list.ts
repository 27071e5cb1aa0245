import { ProxyEndpoints } from "@iaas/contracts";
import { compileGlob } from "@iaas/policy";
import { listMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const list: RecordOf<"list"> = {
  kind: "remote",
  ids: ["list"],
  answer: async (cmd, { ask }) => {
    const { vms } = await ask(ProxyEndpoints.vmList, {});
    // Linear in pattern × name (no RegExp backtracking), case-insensitive as vCenter's own search.
    const glob = cmd.glob === undefined ? undefined : compileGlob(cmd.glob, { caseInsensitive: true });
    return listMessage(glob ? vms.filter((v) => glob.test(v.name)) : vms, cmd.glob);
  },
};
