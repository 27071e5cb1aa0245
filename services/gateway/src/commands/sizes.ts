import { sizesMessage } from "../presentation/views.js";
import type { RecordOf } from "./verb.js";

export const sizes: RecordOf<"sizes"> = {
  kind: "local",
  ids: ["sizes"],
  answer: async (_cmd, { policy }) => sizesMessage(policy),
};
