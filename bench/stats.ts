/** Latency samples in milliseconds and what the report prints of them. */
export interface Summary {
  n: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of sorted samples (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[], errors = 0): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    errors,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN,
  };
}

/** Milliseconds for a table: one decimal below 100, none above. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return "–";
  return v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  return `${(a / b).toFixed(2)}×`;
}

export function mb(kb: number | undefined): string {
  return kb === undefined ? "–" : `${(kb / 1024).toFixed(0)} MB`;
}
