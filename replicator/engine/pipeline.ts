/**
 * One pipeline (source dc, source topic) → (destination dc, target topic) at work: a logical flow in its
 * datacenter pair's link (./link.ts), which fetches for every topic of the pair and hands this flow the
 * batches of its topic. A fetched batch is cut into slices (./slicing.ts); at-least-once sends them in
 * order per partition while the link fetches on (../ordered-sends.ts) and commits the acknowledged
 * positions (./commits.ts); exactly-once writes records and source positions in the link's destination
 * transactions (../transactions.ts). The flow keeps its topic's progress, faults and status.
 */
import type { EachBatchPayload, Message } from "kafkajs";
import type { Logger } from "pino";
import { ReplicatorError } from "../errors.js";
import { ByteBudget } from "../byte-budget.js";
import { OrderedSends } from "../ordered-sends.js";
import { policyFor, type Pipeline } from "../plan.js";
import type { ReplicationPolicy } from "../policy.js";
import { planRejoin } from "../rejoin.js";
import type { DirectProducer } from "../../kafka/direct-producer.js";
import { protocolErrorCode, REBALANCE_IN_PROGRESS } from "../../kafka/protocol.js";
import { errorFields, errorText } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import { directSender, viaKafkajs } from "./clients.js";
import { OffsetCommits } from "./commits.js";
import { connectAdmin, type Datacenters } from "./datacenters.js";
import type { Link } from "./link.js";
import { nextSlice, type SliceOptions } from "./slicing.js";
import { SliceDelivery } from "./delivery.js";
import { PartitionFaults } from "./partition-faults.js";
import type { TargetSizes } from "./targets.js";
import {
  ALO_COMMIT_RETRY_MS,
  ALO_SENDS_PER_PARTITION,
  ALO_STOP_DRAIN_MS,
  BATCH_OVERHEAD,
  EOS_SOURCE_COMMIT_MS,
  SLICE_LIMITS,
} from "./tuning.js";
import { PipelineProgress } from "./progress.js";
import type { EngineContext, LinkFlow } from "./types.js";

export type PipelineState = LinkFlow["state"];

export class PipelineTask implements LinkFlow {
  readonly policy: ReplicationPolicy;
  /** "starting" until its link's consumer reads the topic. */
  state: PipelineState = "starting";
  error?: string;
  sourcePartitions = 0;
  targetPartitions = 0;
  /** Source partitions this replicator owns, as the link's consumer group assigned them. */
  assigned: number[] = [];
  readonly progress: PipelineProgress;
  private maxBatchBytes = 0;
  /** Whether the target is prepared and the sender connected: the link may read the topic. */
  private prepared = false;
  /** At-least-once: the sender straight to the target's partition leaders (else the link's producer). */
  private direct?: DirectProducer;
  /** Exactly-once: per source partition, the next offset to replicate as committed in the destination. */
  private eosStart?: Map<number, bigint>;
  /** At-least-once: the sends per source partition, in order, pipelined with the fetches. */
  private sends?: OrderedSends;
  /** The acknowledged and committed source positions (exactly-once: the source group's best-effort copy). */
  readonly commits: OffsetCommits;
  /** Whether the link's consumer had partitions of this topic assigned before (a later join is a rejoin). */
  private joined = false;
  /** At-least-once: positions of the pipeline's group before the upgrade, for partitions the pair's group lacks. */
  private inherited?: Map<number, string>;
  /** Source partitions paused after a failed send: retrying (with backoff) or stopped (error policy). */
  readonly faults: PartitionFaults;
  private readonly delivery: SliceDelivery;
  /** Exactly-once: partitions reading their position from the destination before they resume. */
  private readonly resuming = new Set<number>();
  readonly log: Logger;

  constructor(
    private readonly ctx: EngineContext,
    private readonly dcs: Datacenters,
    readonly pipeline: Pipeline,
    /** The datacenter pair's consumer, producer and group. */
    private readonly link: Link,
    /** Runs when a stop ended (the engine forgets the pipeline; the next round may start it again). */
    private readonly onStopped: () => void = () => undefined,
  ) {
    const config = ctx.config();
    this.policy = policyFor(config, pipeline.naming);
    this.log = ctx.logger.child({ pipeline: pipeline.id });
    this.progress = new PipelineProgress(ctx.metrics, pipeline);
    this.delivery = new SliceDelivery(ctx, dcs, pipeline, this.log, () => this.maxBatchBytes);
    const topic = pipeline.sourceTopic;
    this.faults = new PartitionFaults(ctx, pipeline, this.log, {
      pause: (partition) => this.link.pause(topic, [partition]),
      resume: (partition, offset) => this.resume(partition, offset),
      acknowledge: (partition, offset) => {
        if (!this.exactlyOnce && this.assigned.includes(partition))
          this.commits.acknowledge(partition, offset);
      },
      stopping: () => this.state === "stopping",
      suspect: () => this.dcs.check(pipeline.destinationDc),
    });
    const exactlyOnce = ctx.delivery === "exactly-once";
    if (!exactlyOnce) {
      // A failed send stops its partition only (later sends of it are not made); the others go on.
      this.sends = new OrderedSends(ALO_SENDS_PER_PARTITION, (err, partition) =>
        this.faults.failed(partition, err),
      );
    } else this.eosStart = new Map();
    this.commits = new OffsetCommits({
      commit: (positions) => this.link.commit(topic, positions),
      intervalMs: () => this.ctx.config().replicator.commitIntervalMs,
      retryMs: ALO_COMMIT_RETRY_MS,
      // At-least-once: what the group holds is what /status reports as committed (exactly-once: the
      // destination transaction, set on acknowledgement).
      onCommitted: exactlyOnce ? undefined : (positions) => this.progress.committed(positions),
      onError: (err) => {
        ctx.metrics.errors.inc({ kind: "commit" });
        this.log.debug({ err: errorFields(err) }, "offset commit failed; retrying");
      },
    });
  }

  get id(): string {
    return this.pipeline.id;
  }

  /** The consumer group the positions live in (the link's). */
  get groupId(): string {
    return this.link.groupId;
  }

  /** Read after an await (the state may have changed meanwhile). */
  private get stopping(): boolean {
    return this.state === "stopping";
  }

  private get exactlyOnce(): boolean {
    return this.ctx.delivery === "exactly-once";
  }

  /** Whether the link may read this topic: prepared, not stopping or failed. */
  get ready(): boolean {
    return this.prepared && (this.state === "starting" || this.state === "running");
  }

  /** At-least-once without the direct sender (kafkajs internals off limits): the link's producer sends. */
  get needsFallbackProducer(): boolean {
    return this.prepared && !this.exactlyOnce && !this.direct;
  }

  /** Sends queued or in flight (at-least-once). */
  get inFlight(): number {
    return this.sends?.pending ?? 0;
  }

  /**
   * Takes the prepared target's sizes (./targets.ts) and connects the sender; the link's next sync reads
   * the topic. A failure leaves the state "failed" for the next round.
   */
  async prepare(sizes: TargetSizes): Promise<void> {
    this.sourcePartitions = sizes.source;
    this.targetPartitions = sizes.target;
    const limit = Math.min(sizes.maxMessageBytes, this.ctx.config().replicator.maxRecordBytes ?? Infinity);
    this.maxBatchBytes = limit - BATCH_OVERHEAD;
    try {
      if (!this.exactlyOnce) {
        this.direct = directSender(this.dcs.get(this.pipeline.destinationDc), this.pipeline.targetTopic);
        if (!this.direct)
          this.log.info("kafkajs cluster factory not found: sending through kafkajs's producer");
        await this.direct?.connect();
      }
      this.prepared = true;
    } catch (err) {
      this.ctx.metrics.errors.inc({ kind: "pipeline-start" });
      this.log.warn({ err: errorFields(err) }, "pipeline failed to start; retrying next round");
      this.fail(err);
    }
  }

  /** The link's consumer reads the topic now. */
  started(): void {
    if (this.state !== "starting") return;
    this.state = "running";
    this.log.debug(
      {
        groupId: this.link.groupId,
        sourcePartitions: this.sourcePartitions,
        targetPartitions: this.targetPartitions,
        maxMessageBytes: this.maxBatchBytes + BATCH_OVERHEAD,
      },
      "pipeline started",
    );
  }

  /** Exactly-once: the positions committed in the destination (this engine's partitions), read by the link. */
  startAt(positions: ReadonlyMap<number, bigint>): void {
    this.eosStart = new Map(positions);
  }

  /** Exactly-once, after the link's consumer started: each partition resumes at its destination position. */
  seekStart(): void {
    for (const [partition, offset] of this.eosStart ?? []) {
      if (!this.faults.has(partition) && !this.resuming.has(partition))
        this.link.seek(this.pipeline.sourceTopic, partition, offset.toString());
    }
  }

  /** Whether the link's group assigned this topic at least once (a new flow has not). */
  get joinedOnce(): boolean {
    return this.joined;
  }

  /** At-least-once: where partitions without a position in the pair's group start (../migration.ts). */
  inherit(positions: ReadonlyMap<number, string>): void {
    this.inherited = new Map(positions);
  }

  /** The link's group assigned this topic's partitions (a join or a rejoin). */
  assignedNow(partitions: readonly number[]): void {
    const topic = this.pipeline.sourceTopic;
    const before = this.joined ? this.assigned : undefined;
    this.joined = true;
    this.assigned = [...partitions].sort((a, b) => a - b);
    this.log.debug({ assigned: this.assigned }, "partitions assigned");
    // Paused partitions stay paused across the rejoin; those that moved away are their new owner's.
    for (const partition of [...this.faults.byPartition.keys()]) {
      if (this.assigned.includes(partition)) this.link.pause(topic, [partition]);
      else {
        this.faults.forget(partition);
        this.sends?.reset(partition);
      }
    }
    if (this.exactlyOnce) return; // resumes from the destination's positions (eosStart)
    // At-least-once rejoin: the partitions this member kept resume at its acknowledged positions, not
    // at the group's older committed ones (../rejoin.ts).
    if (before === undefined && this.inherited) {
      for (const partition of this.assigned) {
        const offset = this.inherited.get(partition);
        if (offset === undefined) continue;
        this.link.seek(topic, partition, offset);
        this.log.info(
          { partition, offset },
          "resuming at the position of the pipeline's group before the upgrade",
        );
      }
      this.inherited = undefined;
    }
    const plan = planRejoin(before, this.assigned, this.commits.acked, this.commits.committed);
    for (const { partition, offset } of plan.seeks) {
      this.link.seek(topic, partition, offset);
      this.log.info({ partition, offset }, "rejoined: resuming at the acknowledged position");
    }
    for (const partition of plan.forget) this.commits.forget(partition);
  }

  /** The destination's bytes-in-flight budget, shared by every flow into it (created on first use). */
  private sendBudget(): ByteBudget {
    const dst = this.dcs.get(this.pipeline.destinationDc);
    return (dst.sendBudget ??= new ByteBudget(this.ctx.config().replicator.maxInFlightBytes));
  }

  /** Resolves when every send queued so far has settled (the link drains before a restart or a rebalance). */
  drain(): Promise<void> {
    return this.sends?.drain() ?? Promise.resolve();
  }

  /** Graceful stop: at-least-once drains the sends in flight and commits them; the sender disconnects. */
  async stop(reason: string): Promise<void> {
    if (this.state === "stopping") return;
    this.state = "stopping";
    this.commits.close();
    if (this.sends) {
      // Stop fetching, let the sends in flight finish, and commit what was acknowledged, so that the next
      // owner of the partitions re-reads as little as possible.
      try {
        this.link.pause(this.pipeline.sourceTopic);
        this.sends.close();
        await Promise.race([this.sends.drain(), sleep(ALO_STOP_DRAIN_MS, { unref: true })]);
        await this.commits.commitNow();
      } catch (err) {
        this.log.debug({ err: errorFields(err) }, "final offset commit failed");
      }
    }
    this.commits.cancel();
    this.faults.close();
    await this.delivery.close();
    try {
      await this.direct?.disconnect();
    } catch (err) {
      this.log.warn({ err: errorFields(err) }, "pipeline disconnect failed");
    }
    this.link.remove(this);
    this.onStopped();
    this.progress.removeLag();
    this.log.info({ reason }, "pipeline stopped");
  }

  fail(err: unknown): void {
    this.state = "failed";
    this.error = errorText(err);
  }

  /** Copies one fetched batch (one source partition) to the destination, slice by slice. */
  async replicateBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const p = this.pipeline;
    const { direct } = this;
    const transactions = this.exactlyOnce ? this.link.transactions : undefined;
    const fallback = this.link.fallbackProducer;
    if (this.exactlyOnce ? !transactions : !direct && !fallback)
      throw new ReplicatorError("NOT_STARTED", `pipeline ${p.id} has no producer`);
    // A partition paused after a failure takes no batch until it resumes (with a seek: this one is stale).
    if (this.faults.has(batch.partition) || this.resuming.has(batch.partition)) return;
    const targetPartition =
      batch.partition < this.targetPartitions
        ? batch.partition
        : batch.partition % Math.max(1, this.targetPartitions);
    const options: SliceOptions = {
      pipeline: p,
      policy: this.policy,
      sourcePartition: batch.partition,
      targetPartition,
      limits: SLICE_LIMITS[transactions ? "exactly-once" : "at-least-once"],
      maxBatchBytes: this.maxBatchBytes,
    };
    const resumeFrom = this.eosStart?.get(batch.partition);
    if (resumeFrom !== undefined) options.resumeFrom = resumeFrom;
    const deliver = direct
      ? (chunk: Message[]) => direct.send(targetPartition, chunk)
      : viaKafkajs(fallback!, p.targetTopic);
    let i = 0;
    while (i < batch.messages.length) {
      if (
        !isRunning() ||
        isStale() ||
        this.state === "stopping" || // stop() commits what was sent before it: nothing may go out after
        this.link.quieting || // a restart, a rebalance or a stop of the link: the same
        !this.assigned.includes(batch.partition) ||
        this.faults.has(batch.partition) ||
        this.resuming.has(batch.partition)
      )
        return;
      // Exactly-once: sent and acknowledged, then resolved. At-least-once: queued behind the partition's
      // earlier sends, then resolved: the fetch position moves on, the committed one follows the acks.
      const from = batch.messages[i];
      const slice = nextSlice(batch.messages, i, options);
      i = slice.end;
      this.progress.sliced(slice.skipped, slice.chunked);
      const last = slice.last;
      if (!last || !from) break;
      if (!slice.replicable) {
        resolveOffset(last.offset); // only records replicated before (exactly-once resume)
        continue;
      }
      const next = (BigInt(last.offset) + 1n).toString();
      if (transactions) {
        // Exactly-once: this slice's records and its source position, in the transaction it shares with
        // the slices of other partitions replicated at the same time (../transactions.ts).
        try {
          await this.delivery.exactlyOnce(batch.partition, slice, from.offset, next, transactions);
        } catch (err) {
          this.faults.failed(batch.partition, err); // paused: retried, or stopped by the error policy
          return;
        }
        this.eosStart?.set(batch.partition, BigInt(next));
        this.progress.acknowledged(batch.partition, last.offset, slice.timestamps, slice.bytes, next);
        // Best effort (monitoring, shorter re-reads), coalesced: the destination holds the real position.
        this.commits.acknowledge(batch.partition, next, EOS_SOURCE_COMMIT_MS);
        this.faults.acknowledged(batch.partition);
      } else {
        // Back-pressure: the bytes in flight to the destination, over all its topics (../byte-budget.ts).
        const budget = this.sendBudget();
        const gauge = this.ctx.metrics.inFlightBytes.labels({ destination: p.destinationDc });
        await budget.acquire(slice.bytes);
        gauge.set(budget.inFlight);
        let released = false;
        const release = () => {
          if (!released) budget.release(slice.bytes);
          released = true;
          gauge.set(budget.inFlight);
        };
        if (this.stopping || this.link.quieting || this.faults.has(batch.partition)) {
          release(); // stopped, restarted or failed while it waited: made after the final drain otherwise
          return;
        }
        try {
          await this.sends!.enqueue(
            batch.partition,
            () => this.delivery.atLeastOnce(batch.partition, slice, from.offset, deliver),
            () => {
              this.progress.acknowledged(batch.partition, last.offset, slice.timestamps, slice.bytes);
              // A send of a partition this member lost in a rebalance: its new owner has taken over the
              // position, and committing this one later could move it back.
              if (this.assigned.includes(batch.partition)) this.commits.acknowledge(batch.partition, next);
              this.faults.acknowledged(batch.partition);
            },
            release,
          );
        } catch {
          release();
          return; // the partition failed: paused, retried or stopped (./partition-faults.ts)
        }
      }
      resolveOffset(last.offset);
      try {
        await heartbeat();
      } catch (err) {
        if (this.sends && protocolErrorCode(err) === REBALANCE_IN_PROGRESS) await this.link.beforeRejoin();
        throw err;
      }
    }
  }

  /** A datacenter of this pipeline answers again after an outage: its retrying partitions try now. */
  datacenterBack(name: string): void {
    if (name === this.pipeline.destinationDc || name === this.pipeline.sourceDc) this.faults.retryNow();
  }

  /** The partitions stopped at a refused record try it again (after a configuration change). */
  retryStopped(): void {
    for (const [partition, fault] of [...this.faults.byPartition]) {
      if (fault.state !== "stopped") continue;
      this.faults.forget(partition);
      this.log.info(
        { partition, offset: fault.offset },
        "stopped partition: trying the refused record again",
      );
      this.resume(partition, fault.offset);
    }
  }

  /** Resumes a paused partition at `offset` (else its acknowledged position), with a new send lane. */
  private resume(partition: number, offset: string | undefined): void {
    if (this.exactlyOnce) return void this.resumeExactlyOnce(partition, offset);
    const topic = this.pipeline.sourceTopic;
    const position = offset ?? this.commits.acked.get(partition);
    try {
      if (position !== undefined) this.link.seek(topic, partition, position);
      this.sends?.reset(partition);
      this.link.resume(topic, [partition]);
    } catch (err) {
      this.log.warn(
        { partition, err: errorFields(err) },
        "partition could not resume; the pipeline restarts",
      );
      this.fail(err);
    }
  }

  /**
   * Exactly-once: resumes at the position the destination group holds, read once the transactional id is
   * initialised again (TransactionGroup.settled): a commit whose answer was lost in an outage may have
   * gone through, and the position in memory would then write its records a second time. Still
   * unreachable: the partition fails again (paused, retried; at once when the datacenter is back).
   */
  private async resumeExactlyOnce(partition: number, offset: string | undefined): Promise<void> {
    const { sourceTopic: topic, destinationDc } = this.pipeline;
    this.resuming.add(partition); // a batch fetched before the pause must not go out meanwhile
    try {
      const transactions = this.link.transactions;
      if (!transactions) throw new ReplicatorError("NOT_STARTED", `pipeline ${this.id} has no producer`);
      await transactions.settled();
      const dst = this.dcs.get(destinationDc);
      await connectAdmin(dst);
      const { targetTopic } = this.pipeline; // positions are kept under the target's name (./link.ts)
      const committed = await dst.admin.fetchOffsets({ groupId: this.groupId, topics: [targetTopic] });
      const stored = committed.flatMap((t) => t.partitions).find((p) => p.partition === partition)?.offset;
      const position =
        stored !== undefined && stored !== "-1" && stored !== ""
          ? stored
          : (offset ?? this.eosStart?.get(partition)?.toString());
      if (this.state === "stopping") return;
      if (position !== undefined) {
        this.eosStart?.set(partition, BigInt(position));
        this.link.seek(topic, partition, position);
      }
      this.resuming.delete(partition);
      this.link.resume(topic, [partition]);
    } catch (err) {
      this.resuming.delete(partition);
      if (this.state !== "stopping") this.faults.failed(partition, err);
    }
  }
}
