/**
 * At-least-once after a rejoin of a pipeline's consumer group (rebalance, stale metadata, coordinator move).
 * No I/O: the engine applies the plan. kafkajs resumes every assigned partition from the group's committed
 * position, which can trail what this member had acknowledged (commits are coalesced by
 * `replicator.commitIntervalMs`, and the commit at a rebalance can fail). Re-reading from there copies
 * acknowledged records a second time.
 *
 * - A partition this member kept through the rejoin resumes at its own acknowledged position: every record
 *   before it is in the destination (sends of a partition are acknowledged in order, ./ordered-sends.ts).
 * - A partition that was away (or is new to this member) resumes from the group's position: another member
 *   may have moved it on, and this member's old acknowledgement would only go back.
 * - Positions of partitions this member no longer owns are forgotten, so they are never committed.
 */
export interface RejoinPlan {
  /** Partitions to resume at this member's acknowledged position, which the group has not committed. */
  seeks: { partition: number; offset: string }[];
  /** Partitions whose acknowledged positions are dropped (no longer assigned). */
  forget: number[];
}

export function planRejoin(
  before: readonly number[] | undefined,
  assigned: readonly number[],
  acked: ReadonlyMap<number, string>,
  committed: ReadonlyMap<number, string>,
): RejoinPlan {
  const kept = new Set(before ?? []);
  const now = new Set(assigned);
  const seeks: RejoinPlan["seeks"] = [];
  for (const partition of assigned) {
    if (!kept.has(partition)) continue;
    const offset = acked.get(partition);
    if (offset !== undefined && committed.get(partition) !== offset) seeks.push({ partition, offset });
  }
  const forget = [...acked.keys()].filter((partition) => !now.has(partition)).sort((a, b) => a - b);
  return { seeks, forget };
}
