/**
 * The paused source partitions of one pipeline: a failed send pauses its partition only. Stopped at a
 * refused record (error policy stop) it stays paused and /healthz and /status name it; otherwise it is
 * retried alone after a jittered backoff (./faults.ts), resuming at its acknowledged position. One log
 * line when a partition starts failing (none when its datacenter is out of reach: that has its own line)
 * and one when it replicates again; the retries between are debug.
 */
import type { Logger } from "pino";
import type { Pipeline } from "../plan.js";
import { errorFields, errorText } from "../../common/log.js";
import { SliceFailure } from "./delivery.js";
import { classifyFailure, RefusedRecord, retryDelayMs } from "./faults.js";
import type { EngineContext } from "./types.js";

/** A paused source partition, as /status and /healthz report it. */
export interface PartitionFault {
  state: "retrying" | "stopped";
  /** Where the partition resumes: the refused record (stopped) or the first record not acknowledged. */
  offset: string;
  reason: string;
  error: string;
  since: string;
}

/** What the faults do to the pipeline's consumer and commits. */
export interface PartitionControl {
  pause(partition: number): void;
  /** Seeks to `offset` (undefined: the acknowledged position), opens a new send lane, resumes fetching. */
  resume(partition: number, offset: string | undefined): void;
  /** At-least-once: what went through before the failure is acknowledged (the commit starts there). */
  acknowledge(partition: number, offset: string): void;
  /** Whether the pipeline is stopping (no retry then). */
  stopping(): boolean;
  /**
   * A retriable failure: let the destination datacenter be checked (an outage is then seen at once);
   * resolves whether it answers.
   */
  suspect(err: unknown): Promise<boolean>;
}

export class PartitionFaults {
  readonly byPartition = new Map<number, PartitionFault>();
  /** Consecutive failed attempts per partition (the backoff), cleared by an acknowledgement. */
  private readonly attempts = new Map<number, number>();
  /** The retry timer of each retrying partition. */
  private readonly timers = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly pipeline: Pipeline,
    private readonly log: Logger,
    private readonly control: PartitionControl,
  ) {}

  has(partition: number): boolean {
    return this.byPartition.has(partition);
  }

  /** A partition's send failed (a {@link SliceFailure}, or any error: resume at the acknowledged position). */
  failed(partition: number, err: unknown): void {
    const failure = err instanceof SliceFailure ? err : new SliceFailure(undefined, err);
    const cause = failure.cause;
    this.control.pause(partition);
    if (failure.resumeAt !== undefined) this.control.acknowledge(partition, failure.resumeAt);
    if (cause instanceof RefusedRecord) {
      const reason = cause.failure.reason;
      this.byPartition.set(partition, {
        state: "stopped",
        offset: failure.resumeAt ?? "-1",
        reason,
        error: errorText(cause.cause),
        since: new Date().toISOString(),
      });
      this.ctx.metrics.recordsFailed.inc({ pipeline: this.pipeline.id, reason, action: "stopped" });
      this.log.error(
        { partition, offset: failure.resumeAt, reason, err: errorFields(cause.cause) },
        "record refused by the destination: partition stopped (error policy stop)",
      );
      return;
    }
    const attempt = (this.attempts.get(partition) ?? 0) + 1;
    this.attempts.set(partition, attempt);
    const delay = retryDelayMs(attempt - 1);
    const { reason } = classifyFailure(cause);
    this.byPartition.set(partition, {
      state: "retrying",
      offset: failure.resumeAt ?? "-1",
      reason,
      error: errorText(cause),
      since: new Date().toISOString(),
    });
    this.ctx.metrics.errors.inc({ kind: "replicate" });
    const line = {
      partition,
      resumeAt: failure.resumeAt,
      attempt,
      retryInMs: delay,
      err: errorFields(cause),
    };
    const suspected = this.control.suspect(cause);
    if (attempt === 1)
      // A datacenter out of reach is one `datacenter unreachable` line, not one per partition.
      void suspected.then(
        (answers) =>
          answers
            ? this.log.warn(line, "partition not replicated; retrying it alone")
            : this.log.debug(line, "partition not replicated: its datacenter is unreachable"),
        () => undefined,
      );
    else this.log.debug(line, "partition retry failed");
    clearTimeout(this.timers.get(partition));
    const timer = setTimeout(() => this.retry(partition), delay);
    timer.unref();
    this.timers.set(partition, timer);
  }

  /** The destination answers again after an outage: every retrying partition tries now, not at its backoff. */
  retryNow(): void {
    for (const [partition, fault] of [...this.byPartition]) {
      if (fault.state !== "retrying") continue;
      this.attempts.set(partition, 0); // the next failure starts the backoff again
      this.retry(partition);
    }
  }

  private retry(partition: number): void {
    clearTimeout(this.timers.get(partition));
    this.timers.delete(partition);
    const fault = this.byPartition.get(partition);
    if (this.control.stopping() || fault?.state !== "retrying") return;
    this.byPartition.delete(partition);
    this.control.resume(partition, fault.offset === "-1" ? undefined : fault.offset);
  }

  /** An acknowledgement: after failed attempts, the partition is healthy again (one line). */
  acknowledged(partition: number): void {
    const attempts = this.attempts.get(partition);
    if (attempts === undefined) return;
    this.attempts.delete(partition);
    this.log.info({ partition, attempts }, "partition replicating again");
  }

  /** A partition that moved to another member in a rebalance: its new owner deals with it. */
  forget(partition: number): void {
    clearTimeout(this.timers.get(partition));
    this.timers.delete(partition);
    this.byPartition.delete(partition);
    this.attempts.delete(partition);
  }

  /** No retry after a stop. */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
