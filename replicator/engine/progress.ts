/**
 * What one pipeline has replicated, for /status and the metrics: totals, and per source partition the
 * acknowledged and the committed positions.
 */
import type { ReplicatorMetrics } from "../metrics.js";
import type { Pipeline, RecordDecision } from "../plan.js";
import type { PartitionProgress } from "./types.js";

export class PipelineProgress {
  records = 0;
  bytes = 0;
  skipped = 0;
  readonly partitions = new Map<number, PartitionProgress>();
  private readonly labels: { source: string; destination: string; topic: string };

  constructor(
    private readonly metrics: ReplicatorMetrics,
    private readonly pipeline: Pipeline,
  ) {
    this.labels = {
      source: pipeline.sourceDc,
      destination: pipeline.destinationDc,
      topic: pipeline.sourceTopic,
    };
  }

  /** Records not sent, with their reasons; records chunked because they exceed the destination's limit. */
  sliced(skipped: readonly Exclude<RecordDecision, "send">[], chunked: number): void {
    this.skipped += skipped.length;
    for (const reason of skipped) this.metrics.skipped.inc({ ...this.labels, reason });
    if (chunked > 0) this.metrics.chunked.inc({ destination: this.pipeline.destinationDc }, chunked);
  }

  /**
   * A slice the destination acknowledged, up to `lastOffset`: latency from the records' timestamps,
   * totals; `committedNext` when its position is committed with it (an exactly-once transaction).
   */
  acknowledged(
    partition: number,
    lastOffset: string,
    timestamps: readonly number[],
    bytes: number,
    committedNext?: string,
  ): void {
    const ackAt = Date.now();
    const latency = this.metrics.latency.labels({ destination: this.pipeline.destinationDc });
    for (const ts of timestamps) latency.observe((ackAt - ts) / 1000);
    this.records += timestamps.length;
    this.bytes += bytes;
    this.metrics.records.inc(this.labels, timestamps.length);
    this.metrics.bytes.inc(this.labels, bytes);
    const progress = this.of(partition);
    progress.lastOffset = lastOffset;
    if (committedNext !== undefined) progress.committed = committedNext;
    progress.records += timestamps.length;
  }

  /** Positions the group now holds (at-least-once commits). */
  committed(positions: readonly { partition: number; offset: string }[]): void {
    for (const { partition, offset } of positions) this.of(partition).committed = offset;
  }

  /** Drops the pipeline's lag series (a stopped pipeline). */
  removeLag(): void {
    for (const partition of this.partitions.keys()) {
      this.metrics.lag.remove({ pipeline: this.pipeline.id, partition: String(partition) });
    }
  }

  private of(partition: number): PartitionProgress {
    let progress = this.partitions.get(partition);
    if (!progress) {
      progress = { lastOffset: "-1", committed: "-1", records: 0 };
      this.partitions.set(partition, progress);
    }
    return progress;
  }
}
