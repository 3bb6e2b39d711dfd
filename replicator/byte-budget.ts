/**
 * Back-pressure on the bytes in flight to one destination (at-least-once), no I/O here: a slice takes its
 * bytes before it is queued for sending and gives them back once its send settled (acknowledged or
 * failed). While the budget is spent, new slices wait — the fetch loop waits with them, so a slow
 * destination holds at most `limit` bytes of records in memory, whatever the number of topics and
 * partitions. A slice larger than the whole budget goes through alone (when nothing else is in flight),
 * so one large record never blocks for ever. Waiters are served in order.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!Number.isFinite(limit) || limit < 1) throw new RangeError(`limit must be ≥ 1 byte, got ${limit}`);
  }

  /** Bytes taken by slices not settled yet. */
  get inFlight(): number {
    return this.used;
  }

  /** Slices waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once `bytes` are taken: at once while they fit (and nobody waits before), else in turn. */
  acquire(bytes: number): Promise<void> {
    const n = Math.max(0, bytes);
    if (this.waiting.length === 0 && this.fits(n)) {
      this.used += n;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({
        bytes: n,
        grant: () => {
          this.used += n;
          resolve();
        },
      });
    });
  }

  /** Gives `bytes` back and lets the waiters that now fit go, in order. */
  release(bytes: number): void {
    this.used = Math.max(0, this.used - Math.max(0, bytes));
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) this.waiting.shift()!.grant();
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }
}
