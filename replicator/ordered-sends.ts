/**
 * At-least-once pipelining: the sends of one source partition go out in order, one at a time, while the
 * consumer already fetches what follows. No I/O here: the engine passes the send and what to do on its
 * acknowledgement.
 *
 * - A partition's send starts only after its previous send was acknowledged, so the destination gets the
 *   partition's records in source order, and a failed send stops every later send of that partition (they
 *   reject with the same error): nothing after a gap is ever acknowledged, so the acknowledged position of
 *   a partition always has every record before it in the destination.
 * - `enqueue` waits while a partition has `depth` sends not yet settled (backpressure on the fetch loop).
 * - A failure is kept per partition: later `enqueue` calls of that partition reject with it and
 *   `onFailure` runs once for it; the other partitions go on. `reset` opens the partition again (after
 *   the pipeline moved its fetch position back to the acknowledged one).
 * - `close` (a stopping pipeline): later `enqueue` calls reject, so that `drain` covers every send made.
 */
export class OrderedSends {
  private readonly lanes = new Map<number, { tail: Promise<void>; open: Promise<void>[] }>();
  private readonly failed = new Map<number, { error: unknown }>();
  private closed = false;

  constructor(
    private readonly depth: number,
    private readonly onFailure: (error: unknown, partition: number) => void = () => undefined,
  ) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`depth must be ≥ 1, got ${depth}`);
  }

  /** The failure that stopped a partition's sends, if any. */
  failureOf(partition: number): unknown {
    return this.failed.get(partition)?.error;
  }

  /** Sends not yet settled, over all partitions. */
  get pending(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.open.length;
    return n;
  }

  /**
   * Queues `send` behind the partition's earlier sends; `onAcked` runs when it succeeded (in order per
   * partition). Resolves once the send is queued — not acknowledged; rejects with the partition's failure.
   */
  async enqueue(
    partition: number,
    send: () => Promise<void>,
    onAcked: () => void,
    /** Runs once the queued send settled however: acknowledged, failed, or never made (an earlier one failed). */
    onSettled?: () => void,
  ): Promise<void> {
    let lane = this.lanes.get(partition);
    if (!lane) {
      lane = { tail: Promise.resolve(), open: [] };
      this.lanes.set(partition, lane);
    }
    while (!this.failed.has(partition) && lane.open.length >= this.depth) {
      await lane.open[0]!.catch(() => undefined);
    }
    const failure = this.failed.get(partition);
    if (failure) throw failure.error;
    // Closed while this call waited for room: a send made now would come after the final drain.
    if (this.closed) throw new RangeError("ordered sends closed");
    const done = lane.tail.then(send).then(onAcked);
    if (onSettled) void done.then(onSettled, onSettled);
    const open = lane.open;
    const tracked = done.then(
      () => undefined,
      (error: unknown) => {
        // Only the first failure of the lane counts: the sends behind it reject with the same error.
        if (this.lanes.get(partition)?.open === open && !this.failed.has(partition)) {
          this.failed.set(partition, { error });
          this.onFailure(error, partition);
        }
      },
    );
    void tracked.finally(() => {
      const i = open.indexOf(done);
      if (i >= 0) void open.splice(i, 1);
    });
    open.push(done);
    lane.tail = done;
  }

  /** Opens a failed partition again, with a new lane (the old lane's sends have all settled or fail). */
  reset(partition: number): void {
    this.failed.delete(partition);
    this.lanes.delete(partition);
  }

  /** No send is queued from now on (`enqueue` rejects): what `drain` waits for is all there will be. */
  close(): void {
    this.closed = true;
  }

  /** Resolves when every send queued so far has settled (acknowledged or failed). */
  async drain(): Promise<void> {
    const open = [...this.lanes.values()].flatMap((lane) => lane.open);
    await Promise.allSettled(open);
  }
}
