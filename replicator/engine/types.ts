/** Types shared by the parts of the engine (./*.ts) and its readers (../aggregate.ts, ../admin.ts, ../pool.ts). */
import type { EachBatchPayload } from "kafkajs";
import type { Logger } from "pino";
import type { Pipeline } from "../plan.js";
import type { ReplicatorConfig } from "../config.js";
import type { ReplicatorMetrics } from "../metrics.js";
import type { EngineSlot } from "../assignment.js";

/** What every part of one engine reads: the current configuration, its logger and metrics, and its place. */
export interface EngineContext {
  /** The configuration in force (replaced by `updateConfig`; `delivery` stays the one started with). */
  config(): ReplicatorConfig;
  readonly logger: Logger;
  readonly metrics: ReplicatorMetrics;
  readonly engine: EngineSlot;
  /** The delivery this engine started with: a change takes effect after a restart. */
  readonly delivery: ReplicatorConfig["replicator"]["delivery"];
  /** Whether the engine runs (false once stop() began). */
  running(): boolean;
  /** Starts the next discovery round now. */
  wake(): void;
  /** Whether this instance may create target topics: the elected leader, or every instance without election. */
  isLeader(): boolean;
}

export interface Health {
  ok: boolean;
  datacenters: { name: string; reachable: boolean; error?: string }[];
  /** Source partitions stopped at a record the destination refused (error policy stop). */
  stopped?: StoppedPartition[];
}

export interface StoppedPartition {
  pipeline: string;
  partition: number;
  /** The refused record's offset: the partition resumes there. */
  offset: string;
  reason: string;
  error: string;
}

/** One source partition's progress in a pipeline, as /status reports it. */
export interface PartitionProgress {
  /** Offset of the last record the destination acknowledged ("-1": none yet). */
  lastOffset: string;
  /**
   * The next offset as really committed: to the source group (at-least-once), or in the destination
   * transaction (exactly-once); "-1" until the first commit.
   */
  committed: string;
  records: number;
}

export interface PartitionStatus {
  partition: number;
  /**
   * The acknowledged position: offset of the last record the destination acknowledged ("-1": none yet). It
   * runs ahead of the committed position by up to one commit interval.
   */
  lastReplicatedOffset: string;
  /** Next offset committed to the group ("-1": nothing committed yet); a restart resumes here. */
  committedOffset: string;
  /** Source end offset − committed offset (as MirrorMaker 2 and Burrow count consumer lag). */
  lag?: number;
  /** Present while the partition is paused after a failed send: retrying, or stopped at a refused record. */
  fault?: { state: "retrying" | "stopped"; offset: string; reason: string; error: string; since: string };
}

export interface PipelineStatus {
  id: string;
  model: string;
  group?: string;
  source: { datacenter: string; topic: string; partitions: number };
  destination: { datacenter: string; topic: string; partitions: number };
  state: string;
  error?: string;
  records: number;
  bytes: number;
  skipped: number;
  /** Source partitions this replicator owns (replicators with the same id share the partitions). */
  assigned: number[];
  partitions: PartitionStatus[];
}

export interface ReplicatorStatus {
  id: string;
  running: boolean;
  /** Whether this instance is the elected leader (always true without leader election). */
  leader: boolean;
  discovery: { intervalMs: number; rounds: number; lastRoundAt?: string; lastRoundMs?: number };
  datacenters: { name: string; reachable: boolean; error?: string; topics: number }[];
  applications: { datacenter: string; topic: string; partitions: number }[];
  pipelines: PipelineStatus[];
}

/** What a datacenter pair's link (./link.ts) needs of the flow of one topic (./pipeline.ts `PipelineTask`). */
export interface LinkFlow {
  readonly pipeline: Pipeline;
  readonly state: "starting" | "running" | "stopping" | "failed";
  /** Prepared, not stopping or failed: the link may read the topic. */
  readonly ready: boolean;
  readonly needsFallbackProducer: boolean;
  /** Sends queued or in flight (at-least-once). */
  readonly inFlight: number;
  /** Whether the link's group assigned the topic at least once. */
  readonly joinedOnce: boolean;
  readonly sourcePartitions: number;
  readonly commits: { commitNow(): Promise<void> };
  readonly log: Logger;
  fail(err: unknown): void;
  /** The link's consumer reads the topic now. */
  started(): void;
  /** Exactly-once: the destination positions of this engine's partitions. */
  startAt(positions: ReadonlyMap<number, bigint>): void;
  seekStart(): void;
  /** At-least-once: positions of the pipeline's group before the upgrade. */
  inherit(positions: ReadonlyMap<number, string>): void;
  assignedNow(partitions: readonly number[]): void;
  drain(): Promise<void>;
  replicateBatch(payload: EachBatchPayload): Promise<void>;
}
