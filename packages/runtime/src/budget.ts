/**
 * A budget of bytes held at once across requests (request bodies being received, parsed and
 * handed on). An HTTP edge takes a request's share before it reads the body and gives it back
 * afterwards, so a flood of large bodies costs it a bounded amount of memory whatever their number.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) if not. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}
