/** How work started for an ack stood when the ack had to go: done, failed, or still running. */
export type Raced<T> = { kind: "done"; value: T } | { kind: "failed"; err: unknown } | { kind: "late" };

/**
 * Waits for `work` at most `budgetMs` (Slack wants the ack within 3 s). A late `work` keeps
 * running; its caller decides what follows on the response_url.
 */
export async function withinBudget<T>(work: Promise<T>, budgetMs: number): Promise<Raced<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Raced<T>>((resolve) => {
    timer = setTimeout(() => resolve({ kind: "late" }), budgetMs);
  });
  try {
    return await Promise.race([
      work.then(
        (value): Raced<T> => ({ kind: "done", value }),
        (err: unknown): Raced<T> => ({ kind: "failed", err }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
