/**
 * Status and lag of one engine (the MirrorMaker 2 `MirrorSourceMetrics` role): per pipeline and source
 * partition the acknowledged and the committed positions, and the lag = source end offset − committed
 * position (as MirrorMaker 2 and Burrow count consumer lag: what a restart would re-read counts).
 */
import type { ReplicatorMetrics } from "../metrics.js";
import { offsetsReader, type Datacenters } from "./datacenters.js";
import type { PipelineTask } from "./pipeline.js";
import type { PipelineStatus, StoppedPartition } from "./types.js";

/** Pipeline id → source partition → lag. */
export type Lags = Map<string, Map<number, number>>;

/** Per-partition lag of every pipeline from the source end offsets (one batched read per source); updates the lag gauge. */
export async function refreshLag(
  tasks: Iterable<PipelineTask>,
  dcs: Datacenters,
  metrics: ReplicatorMetrics,
): Promise<Lags> {
  const result: Lags = new Map();
  const bySource = new Map<string, Map<string, PipelineTask[]>>();
  for (const task of tasks) {
    const topics = bySource.get(task.pipeline.sourceDc) ?? new Map<string, PipelineTask[]>();
    const same = topics.get(task.pipeline.sourceTopic);
    if (same) same.push(task);
    else topics.set(task.pipeline.sourceTopic, [task]);
    bySource.set(task.pipeline.sourceDc, topics);
  }
  await Promise.all(
    [...bySource].map(async ([source, topics]) => {
      const dc = dcs.find(source);
      if (!dc?.adminConnected || !dc.reachable) return;
      const ends = await offsetsReader(dc).offsets([...topics.keys()]);
      for (const [topic, offsets] of ends) {
        for (const task of topics.get(topic) ?? []) {
          const lags = new Map<number, number>();
          for (const o of offsets) {
            const committed = task.progress.partitions.get(o.partition)?.committed;
            const from = committed === undefined || committed === "-1" ? o.low : committed;
            const lag = Math.max(0, Number(BigInt(o.high) - BigInt(from)));
            lags.set(o.partition, lag);
            metrics.lag.set({ pipeline: task.pipeline.id, partition: String(o.partition) }, lag);
          }
          result.set(task.pipeline.id, lags);
        }
      }
    }),
  );
  return result;
}

/** The /status entry of one pipeline. */
export function pipelineStatus(task: PipelineTask, lag: Map<number, number> | undefined): PipelineStatus {
  const p = task.pipeline;
  const partitions = [
    ...new Set([
      ...task.progress.partitions.keys(),
      ...(lag?.keys() ?? []),
      ...task.faults.byPartition.keys(),
    ]),
  ].sort((a, b) => a - b);
  return {
    id: p.id,
    model: p.model,
    ...(p.group !== undefined ? { group: p.group } : {}),
    source: { datacenter: p.sourceDc, topic: p.sourceTopic, partitions: task.sourcePartitions },
    destination: { datacenter: p.destinationDc, topic: p.targetTopic, partitions: task.targetPartitions },
    state: task.state,
    ...(task.error !== undefined ? { error: task.error } : {}),
    records: task.progress.records,
    bytes: task.progress.bytes,
    skipped: task.progress.skipped,
    assigned: task.assigned,
    partitions: partitions.map((partition) => {
      const progress = task.progress.partitions.get(partition);
      const l = lag?.get(partition);
      const fault = task.faults.byPartition.get(partition);
      return {
        partition,
        lastReplicatedOffset: progress?.lastOffset ?? "-1",
        committedOffset: progress?.committed ?? "-1",
        ...(l !== undefined ? { lag: l } : {}),
        ...(fault ? { fault } : {}),
      };
    }),
  };
}

/** The stopped partitions of the pipelines, for /healthz: an operator must act on each. */
export function stoppedPartitions(tasks: Iterable<PipelineTask>): StoppedPartition[] {
  const out: StoppedPartition[] = [];
  for (const task of tasks) {
    for (const [partition, fault] of task.faults.byPartition) {
      if (fault.state === "stopped")
        out.push({
          pipeline: task.id,
          partition,
          offset: fault.offset,
          reason: fault.reason,
          error: fault.error,
        });
    }
  }
  return out;
}
