/**
 * One pipeline (source dc, source topic) → (destination dc, target topic) at work: its consumer group,
 * its sends and its commits (the MirrorMaker 2 `MirrorSourceTask` role). A fetched batch is cut into
 * slices (./slicing.ts); at-least-once sends them in order per partition while the consumer fetches on
 * (../ordered-sends.ts) and commits the acknowledged positions (./commits.ts); exactly-once writes records
 * and source positions in destination transactions (../transactions.ts).
 */
import type { Consumer, EachBatchPayload, Message } from "kafkajs";
import type { Logger } from "pino";
import { OWN_TOPIC_PREFIX } from "../config.js";
import { ReplicatorError } from "../errors.js";
import { OrderedSends } from "../ordered-sends.js";
import { policyFor, type Pipeline } from "../plan.js";
import type { ReplicationPolicy } from "../policy.js";
import { planRejoin } from "../rejoin.js";
import { TransactionGroup } from "../transactions.js";
import { ownsAnyPartition, ownsPartition } from "../assignment.js";
import { protocolErrorCode, REBALANCE_IN_PROGRESS } from "../../kafka/protocol.js";
import { errorFields, errorText } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import { createDestination, createSourceConsumer, viaKafkajs, type Destination } from "./clients.js";
import { OffsetCommits } from "./commits.js";
import { connectAdmin, type Datacenters } from "./datacenters.js";
import { nextSlice, type SliceOptions } from "./slicing.js";
import { SliceDelivery } from "./delivery.js";
import { PartitionFaults } from "./partition-faults.js";
import { ensureTarget } from "./targets.js";
import {
  ALO_COMMIT_RETRY_MS,
  ALO_REBALANCE_DRAIN_MS,
  ALO_SENDS_PER_PARTITION,
  ALO_STOP_DRAIN_MS,
  BATCH_OVERHEAD,
  EOS_SOURCE_COMMIT_MS,
  SLICE_LIMITS,
} from "./tuning.js";
import { PipelineProgress } from "./progress.js";
import type { EngineContext } from "./types.js";

export type PipelineState = "starting" | "running" | "stopping" | "failed";

export class PipelineTask {
  readonly groupId: string;
  readonly policy: ReplicationPolicy;
  state: PipelineState = "starting";
  error?: string;
  sourcePartitions = 0;
  targetPartitions = 0;
  /** Source partitions this replicator owns, as the pipeline's consumer group assigned them. */
  assigned: number[] = [];
  readonly progress: PipelineProgress;
  private maxBatchBytes = 0;
  private consumer?: Consumer;
  private destination: Destination = {};
  /** Exactly-once: the shared destination transaction of the slices replicated at the same time. */
  private transactions?: TransactionGroup;
  /** Exactly-once: per source partition, the next offset to replicate as committed in the destination. */
  private eosStart?: Map<number, bigint>;
  /** At-least-once: the sends per source partition, in order, pipelined with the fetches. */
  private sends?: OrderedSends;
  /** The acknowledged and committed source positions (exactly-once: the source group's best-effort copy). */
  readonly commits: OffsetCommits;
  /** At-least-once: a heartbeat saw a rebalance; no new slice starts until the next join. */
  private revoking?: Promise<void>;
  /** Whether the consumer joined the group at least once (a later join is a rejoin). */
  private joined = false;
  /** Source partitions paused after a failed send: retrying (with backoff) or stopped (error policy). */
  readonly faults: PartitionFaults;
  private readonly delivery: SliceDelivery;
  /** Exactly-once: partitions reading their position from the destination before they resume. */
  private readonly resuming = new Set<number>();
  private readonly log: Logger;

  constructor(
    private readonly ctx: EngineContext,
    private readonly dcs: Datacenters,
    readonly pipeline: Pipeline,
    /** Runs when a stop ended (the engine forgets the pipeline; the next round may start it again). */
    private readonly onStopped: () => void = () => undefined,
  ) {
    const config = ctx.config();
    this.groupId = `${OWN_TOPIC_PREFIX}${config.replicator.id}.${pipeline.sourceDc}.${pipeline.sourceTopic}.${pipeline.destinationDc}`;
    this.policy = policyFor(config, pipeline.naming);
    this.log = ctx.logger.child({ pipeline: pipeline.id });
    this.progress = new PipelineProgress(ctx.metrics, pipeline);
    this.delivery = new SliceDelivery(ctx, dcs, pipeline, this.log, () => this.maxBatchBytes);
    const topic = pipeline.sourceTopic;
    this.faults = new PartitionFaults(ctx, pipeline, this.log, {
      pause: (partition) => this.consumer?.pause([{ topic, partitions: [partition] }]),
      resume: (partition, offset) => this.resume(partition, offset),
      acknowledge: (partition, offset) => {
        if (!this.transactions && this.assigned.includes(partition))
          this.commits.acknowledge(partition, offset);
      },
      stopping: () => this.state === "stopping",
      suspect: () => this.dcs.check(pipeline.destinationDc),
    });
    const exactlyOnce = ctx.delivery === "exactly-once";
    this.commits = new OffsetCommits({
      commit: (positions) =>
        this.consumer!.commitOffsets(positions.map((p) => ({ topic: pipeline.sourceTopic, ...p }))),
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

  /**
   * Creates the target if needed and starts the consumer; resolves "waiting" when the leader creates the
   * target first (the next round tries again). A failure leaves the state "failed" for the next round.
   */
  async start(): Promise<"started" | "waiting"> {
    const { ctx, pipeline: p, log } = this;
    try {
      const dst = this.dcs.get(p.destinationDc);
      const src = this.dcs.get(p.sourceDc);
      const sizes = await ensureTarget(ctx, p, src, dst);
      this.sourcePartitions = sizes.source;
      this.targetPartitions = sizes.target;
      const limit = Math.min(sizes.maxMessageBytes, ctx.config().replicator.maxRecordBytes ?? Infinity);
      this.maxBatchBytes = limit - BATCH_OVERHEAD;
      const exactlyOnce = ctx.delivery === "exactly-once";
      const slot = ctx.engine;
      // Exactly-once: source positions live in the destination cluster (group `groupId` there), written in
      // the same transaction as the records (MirrorMaker 2's exactly-once design). Engine k owns the source
      // partitions p with p mod n = k (../assignment.ts) and writes them with its own transactional id
      // `groupId.k`: a restarted pipeline fences the previous producer of the same partitions.
      if (!ownsAnyPartition(slot, sizes.source)) {
        // Fewer source partitions than engines and this engine is past them: joining the group would only
        // cost a consumer and a rebalance of the members that do the work. More partitions restart the pipeline.
        if (this.state === "starting") this.state = "running";
        log.info(
          { sourcePartitions: sizes.source, engine: slot.index, engines: slot.count },
          "pipeline idle: the source topic has fewer partitions than this engine's index",
        );
        return "started";
      }
      this.destination = createDestination(ctx, dst, p.targetTopic, this.groupId, log);
      const { direct, producer } = this.destination;
      if (!exactlyOnce) {
        // A failed send stops its partition only (later sends of it are not made); the others go on.
        this.sends = new OrderedSends(ALO_SENDS_PER_PARTITION, (err, partition) =>
          this.faults.failed(partition, err),
        );
      }
      if (exactlyOnce && producer) {
        this.transactions = new TransactionGroup(
          producer,
          this.groupId,
          (txn, messages) => viaKafkajs(txn, p.targetTopic)(messages),
          async () => {
            const fresh = createDestination(ctx, dst, p.targetTopic, this.groupId, log).producer!;
            await fresh.connect();
            const old = this.destination.producer;
            this.destination = { producer: fresh };
            await old?.disconnect().catch(() => undefined);
            return fresh;
          },
        );
      }
      // The destination side and the source side are set up at the same time: first records arrive sooner.
      const destinationReady = (async () => {
        await (direct ?? producer)?.connect();
        if (exactlyOnce) {
          // Read once the transactional id is initialised (kafkajs's connect does not: its first
          // transaction does, TransactionGroup.settled): the broker answers that only after a pending
          // commit of an earlier producer of these partitions completed, so the positions are final.
          // Only this engine's partitions are kept.
          await this.transactions?.settled();
          const committed = await dst.admin.fetchOffsets({ groupId: this.groupId, topics: [p.sourceTopic] });
          this.eosStart = new Map();
          for (const t of committed)
            for (const part of t.partitions)
              if (part.offset !== "-1" && part.offset !== "" && ownsPartition(slot, part.partition))
                this.eosStart.set(part.partition, BigInt(part.offset));
        }
      })();
      const consumer = createSourceConsumer(ctx, src.kafka, this.groupId, log);
      this.consumer = consumer;
      this.listen(consumer, exactlyOnce);
      const sourceReady = (async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [p.sourceTopic], fromBeginning: true });
      })();
      const [destination, source] = await Promise.allSettled([destinationReady, sourceReady]);
      if (destination.status === "rejected") throw destination.reason;
      if (source.status === "rejected") throw source.reason;
      await consumer.run({
        // At-least-once commits the acknowledged positions itself (./commits.ts); exactly-once keeps its
        // positions in the destination. Resolved offsets only move kafkajs's fetch position.
        autoCommit: false,
        partitionsConsumedConcurrently: ctx.config().replicator.partitionConcurrency,
        eachBatchAutoResolve: false,
        eachBatch: (payload) =>
          this.replicateBatch(payload).catch((err: unknown) => {
            ctx.metrics.errors.inc({ kind: "replicate" });
            log.warn({ err: errorFields(err) }, "batch not replicated (not committed; will be retried)");
            throw err;
          }),
      });
      // Only this engine's partitions (eosStart is filtered); kafkajs applies a seek when the partition is
      // fetched after the group assigned it, and ignores seeks of partitions it does not own.
      for (const [partition, offset] of this.eosStart ?? []) {
        consumer.seek({ topic: p.sourceTopic, partition, offset: offset.toString() });
      }
      if (this.state === "stopping") {
        // Stopped while starting: undo what this start did.
        await consumer.disconnect().catch(() => undefined);
        await (direct ?? producer)?.disconnect().catch(() => undefined);
        return "started";
      }
      if (this.state === "starting") this.state = "running";
      log.info(
        {
          groupId: this.groupId,
          sourcePartitions: sizes.source,
          targetPartitions: sizes.target,
          maxMessageBytes: sizes.maxMessageBytes,
          ...(exactlyOnce ? { transactionalId: `${this.groupId}.${slot.index}`, engines: slot.count } : {}),
        },
        "pipeline started",
      );
      return "started";
    } catch (err) {
      const { direct, producer } = this.destination;
      if (
        err instanceof ReplicatorError &&
        err.code === "WAITING_FOR_LEADER" &&
        !this.consumer &&
        !producer &&
        !direct
      ) {
        // Not an error: the leader creates the target; the next round tries again.
        log.debug({ err: errorFields(err) }, "pipeline waits for the leader");
        return "waiting";
      }
      ctx.metrics.errors.inc({ kind: "pipeline-start" });
      log.warn({ err: errorFields(err) }, "pipeline failed to start; retrying next round");
      this.fail(err);
      return "started";
    }
  }

  /** The group's events: partitions assigned (and rejoins), a rebalance starting, a crash. */
  private listen(consumer: Consumer, exactlyOnce: boolean): void {
    const { ctx, pipeline: p, log } = this;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const before = this.joined ? this.assigned : undefined;
      this.joined = true;
      this.revoking = undefined;
      this.assigned = [...(event.payload.memberAssignment[p.sourceTopic] ?? [])].sort((a, b) => a - b);
      log.info({ assigned: this.assigned }, "partitions assigned");
      // Paused partitions stay paused across the rejoin; those that moved away are their new owner's.
      for (const partition of [...this.faults.byPartition.keys()]) {
        if (this.assigned.includes(partition))
          consumer.pause([{ topic: p.sourceTopic, partitions: [partition] }]);
        else {
          this.faults.forget(partition);
          this.sends?.reset(partition);
        }
      }
      if (exactlyOnce) return; // resumes from the destination's positions (eosStart)
      // At-least-once rejoin: the partitions this member kept resume at its acknowledged positions, not
      // at the group's older committed ones (../rejoin.ts).
      const plan = planRejoin(before, this.assigned, this.commits.acked, this.commits.committed);
      for (const { partition, offset } of plan.seeks) {
        consumer.seek({ topic: p.sourceTopic, partition, offset });
        log.info({ partition, offset }, "rejoined: resuming at the acknowledged position");
      }
      for (const partition of plan.forget) this.commits.forget(partition);
    });
    if (!exactlyOnce) {
      // A rebalance is starting: commit what was acknowledged now, before the group hands the partitions
      // out again, so that a partition moving to another member is not re-read from an older position.
      consumer.on(consumer.events.REBALANCING, () => void this.commits.commitNow());
    }
    consumer.on(consumer.events.CRASH, (event) => {
      const restart = (event.payload as { restart?: boolean }).restart;
      ctx.metrics.errors.inc({ kind: "consumer" });
      log.error({ err: errorFields(event.payload.error), restart }, "pipeline consumer crashed");
      if (!restart) this.fail(event.payload.error);
    });
  }

  /** Graceful stop: at-least-once drains the sends in flight and commits them; the clients disconnect. */
  async stop(reason: string): Promise<void> {
    if (this.state === "stopping") return;
    this.state = "stopping";
    this.commits.close();
    const { direct, producer } = this.destination;
    if (this.sends && this.consumer) {
      // Stop fetching, let the sends in flight finish, and commit what was acknowledged, so that the next
      // owner of the partitions re-reads as little as possible.
      try {
        this.consumer.pause([{ topic: this.pipeline.sourceTopic }]);
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
      await this.consumer?.disconnect();
      await producer?.disconnect();
      await direct?.disconnect();
    } catch (err) {
      this.log.warn({ err: errorFields(err) }, "pipeline disconnect failed");
    }
    this.onStopped();
    this.progress.removeLag();
    this.log.info({ reason }, "pipeline stopped");
  }

  private fail(err: unknown): void {
    this.state = "failed";
    this.error = errorText(err);
  }

  /** Copies one fetched batch (one source partition) to the destination, slice by slice. */
  private async replicateBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const p = this.pipeline;
    const { producer, direct } = this.destination;
    if (!producer && !direct) throw new ReplicatorError("NOT_STARTED", `pipeline ${p.id} has no producer`);
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
      limits: SLICE_LIMITS[this.transactions ? "exactly-once" : "at-least-once"],
      maxBatchBytes: this.maxBatchBytes,
    };
    const resumeFrom = this.eosStart?.get(batch.partition);
    if (resumeFrom !== undefined) options.resumeFrom = resumeFrom;
    const deliver = direct
      ? (chunk: Message[]) => direct.send(targetPartition, chunk)
      : viaKafkajs(producer!, p.targetTopic);
    let i = 0;
    while (i < batch.messages.length) {
      if (
        !isRunning() ||
        isStale() ||
        this.state === "stopping" || // stop() commits what was sent before it: nothing may go out after
        this.revoking ||
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
      if (this.transactions) {
        // Exactly-once: this slice's records and its source position, in the transaction it shares with
        // the slices of other partitions replicated at the same time (../transactions.ts).
        try {
          await this.delivery.exactlyOnce(batch.partition, slice, from.offset, next, this.transactions);
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
          );
        } catch {
          return; // the partition failed: paused, retried or stopped (./partition-faults.ts)
        }
      }
      resolveOffset(last.offset);
      try {
        await heartbeat();
      } catch (err) {
        if (this.sends && protocolErrorCode(err) === REBALANCE_IN_PROGRESS) await this.beforeRejoin();
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
    if (this.transactions) return void this.resumeExactlyOnce(partition, offset);
    const topic = this.pipeline.sourceTopic;
    const position =
      offset ??
      (this.transactions ? this.eosStart?.get(partition)?.toString() : this.commits.acked.get(partition));
    try {
      if (position !== undefined) this.consumer?.seek({ topic, partition, offset: position });
      this.sends?.reset(partition);
      this.consumer?.resume([{ topic, partitions: [partition] }]);
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
      await this.transactions!.settled();
      const dst = this.dcs.get(destinationDc);
      await connectAdmin(dst);
      const committed = await dst.admin.fetchOffsets({ groupId: this.groupId, topics: [topic] });
      const stored = committed.flatMap((t) => t.partitions).find((p) => p.partition === partition)?.offset;
      const position =
        stored !== undefined && stored !== "-1" && stored !== ""
          ? stored
          : (offset ?? this.eosStart?.get(partition)?.toString());
      if (this.state === "stopping") return;
      if (position !== undefined) {
        this.eosStart?.set(partition, BigInt(position));
        this.consumer?.seek({ topic, partition, offset: position });
      }
      this.resuming.delete(partition);
      this.consumer?.resume([{ topic, partitions: [partition] }]);
    } catch (err) {
      this.resuming.delete(partition);
      if (this.state !== "stopping") this.faults.failed(partition, err);
    }
  }

  /**
   * At-least-once, a rebalance seen by a heartbeat: start no new slice, let the sends in flight finish (at
   * most ALO_REBALANCE_DRAIN_MS) and commit what was acknowledged, then let kafkajs rejoin — as the Java
   * consumer's commit in `onPartitionsRevoked`. The batches replicated at the same time share one wait.
   */
  private beforeRejoin(): Promise<void> {
    this.revoking ??= (async () => {
      this.log.info(
        { inFlight: this.sends?.pending ?? 0 },
        "rebalance: finishing the sends in flight and committing before rejoining",
      );
      await Promise.race([this.sends?.drain(), sleep(ALO_REBALANCE_DRAIN_MS, { unref: true })]);
      await this.commits.commitNow();
    })();
    return this.revoking;
  }
}
