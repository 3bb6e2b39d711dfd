/**
 * The at-least-once commit state machine of one pipeline (the MirrorMaker 2 `OffsetSyncWriter` role), no
 * Kafka here: the pipeline passes the `commit` call. A source position is committed only after the
 * destination acknowledged every record before it; commits are coalesced (one `intervalMs` after an
 * acknowledgement), one at a time — acknowledgements meanwhile join the next — and retried after a failure.
 * Committing an old owner's acknowledged position never skips a record; it can only cause re-reads.
 */

export interface CommitPosition {
  partition: number;
  offset: string;
}

/**
 * The positions of a link's commit in requests of at most `maxTopics` topics each. kafkajs's
 * `commitOffsets` groups its input with an object spread per entry (a copy of every topic so far):
 * one call for 10,000 topics was some 5×10^7 key copies, blocking the event loop for seconds.
 */
export function commitRequests<T extends { topic: string }>(
  positions: readonly T[],
  maxTopics: number,
): T[][] {
  const requests: T[][] = [];
  const requestOf = new Map<string, T[]>();
  let current: T[] = [];
  let topics = 0;
  for (const p of positions) {
    let request = requestOf.get(p.topic);
    if (!request) {
      if (topics === maxTopics) {
        requests.push(current);
        current = [];
        topics = 0;
      }
      request = current;
      requestOf.set(p.topic, request);
      topics++;
    }
    request.push(p);
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

export interface OffsetCommitsOptions {
  /** Commits the positions (the next offset to read per partition) to the group. */
  commit: (positions: CommitPosition[]) => Promise<void>;
  /** The delay of a coalesced commit after an acknowledgement (read at each acknowledgement). */
  intervalMs: () => number;
  /** The delay before a failed commit is tried again. */
  retryMs: number;
  /** After a successful commit. */
  onCommitted?: (positions: CommitPosition[]) => void;
  /** After a failed commit (it is retried). */
  onError?: (error: unknown) => void;
}

export class OffsetCommits {
  /** Per partition, the next offset after the records the destination acknowledged. */
  readonly acked = new Map<number, string>();
  /** Per partition, the position last committed to the group. */
  readonly committed = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  /** Positions were acknowledged while a commit was in flight. */
  private again = false;
  private closed = false;

  constructor(private readonly options: OffsetCommitsOptions) {}

  /** Records an acknowledged position and schedules its commit. */
  acknowledge(partition: number, next: string, delayMs?: number): void {
    this.acked.set(partition, next);
    this.schedule(delayMs);
  }

  /** Forgets a partition this member no longer owns (its new owner commits it). */
  forget(partition: number): void {
    this.acked.delete(partition);
    this.committed.delete(partition);
  }

  /** Commits after `delayMs` (default `intervalMs`), or after the commit in flight. No-op once closed. */
  schedule(delayMs = this.options.intervalMs()): void {
    if (this.closed) return;
    if (this.committing) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  /** Commits the acknowledged positions now instead of at the scheduled time. Never rejects. */
  commitNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.flush();
  }

  /** No more scheduled commits (a stopping pipeline); commitNow still commits. */
  close(): void {
    this.closed = true;
  }

  /** Drops a scheduled commit. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Commits every acknowledged position not committed yet. Never rejects. */
  private async flush(): Promise<void> {
    while (this.committing) await this.committing;
    const positions: CommitPosition[] = [];
    for (const [partition, offset] of this.acked) {
      if (this.committed.get(partition) !== offset) positions.push({ partition, offset });
    }
    if (positions.length === 0) return;
    this.again = false;
    this.committing = (async () => {
      let failed = false;
      try {
        await this.options.commit(positions);
        for (const p of positions) this.committed.set(p.partition, p.offset);
        this.options.onCommitted?.(positions);
      } catch (err) {
        failed = true;
        this.options.onError?.(err);
      } finally {
        this.committing = undefined;
      }
      if (failed) this.schedule(this.options.retryMs);
      else if (this.again) this.schedule();
    })();
    await this.committing;
  }
}
