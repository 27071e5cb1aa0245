import { z } from "zod";

/**
 * A NATS subject token we build subjects from: no dots, spaces or wildcards, so a value can never
 * widen or redirect a subject (`iaas.result.>` from a crafted id, for instance).
 */
export const SubjectToken = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be 1-128 of A-Z a-z 0-9 _ -");

export function token(value: string, what = "subject token"): string {
  const r = SubjectToken.safeParse(value);
  if (!r.success) throw new TypeError(`invalid ${what} ${JSON.stringify(value)}: must be 1-128 of A-Z a-z 0-9 _ -`);
  return value;
}
