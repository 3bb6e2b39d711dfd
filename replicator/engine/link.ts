/**
 * One datacenter pair at work in one engine, source dc → destination dc (the MirrorMaker 2
 * `MirrorSourceTask` role for every topic between them): one consumer group
 * `lp.replicator.<id>.<source>.<destination>` reads every planned topic of the pair, and each fetched
 * batch goes to the flow of its topic (./pipeline.ts), which slices, sends and acknowledges it.
 * Exactly-once: one transactional producer `<group id>.<engine index>` and one TransactionGroup for all
 * the pair's topics, the positions in the same group of the destination.
 *
 * A running kafkajs consumer cannot add subscriptions, so a change of the topic set restarts the
 * consumer: the sends in flight finish and are committed (at-least-once) or their transactions settle
 * (exactly-once), the consumer leaves the group and joins again with the new set, keeping its broker
 * connections (a removed topic needs a new consumer: kafkajs keeps every subscription). Every partition
 * resumes where it was committed, so no topic is re-read. Connections, fetches and commits therefore grow
 * with the datacenter pairs and partitions, not with the topics (docs/replicator.md "Scale").
 */
import type { Consumer, EachBatchPayload, Producer } from "kafkajs";
import type { Logger } from "pino";
import { OWN_TOPIC_PREFIX } from "../config.js";
import { TransactionGroup } from "../transactions.js";
import { ownsPartition } from "../assignment.js";
import { errorFields } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import { createSourceConsumer, linkProducer, sendAcknowledged } from "./clients.js";
import { commitRequests, type CommitPosition } from "./commits.js";
import { connectAdmin, type Datacenter, type Datacenters } from "./datacenters.js";
import { groupPositions, inheritedPositions, legacyGroupId, type Positions } from "./migration.js";
import {
  ALO_REBALANCE_DRAIN_MS,
  ALO_STOP_DRAIN_MS,
  COMMIT_TOPICS_PER_REQUEST,
  LINK_COMMIT_BATCH_MS,
} from "./tuning.js";
import type { EngineContext, LinkFlow } from "./types.js";

/** Topics named per topic in the "partitions assigned" line; more are counted only. */
const LOGGED_TOPICS = 50;

interface PendingCommit {
  positions: { topic: string; partition: number; offset: string }[];
  settle: (error?: unknown) => void;
}

export class Link {
  readonly groupId: string;
  /** The flows of this pair, by source topic. */
  readonly flows = new Map<string, LinkFlow>();
  private consumer?: Consumer;
  /** The topics the running consumer reads, and the flow each was read for. */
  private subscribed = new Map<string, LinkFlow>();
  /** Every topic the consumer ever subscribed (kafkajs keeps them all). */
  private everSubscribed = new Set<string>();
  /** Exactly-once: the pair's transactional producer and the transactions of all its flows. */
  transactions?: TransactionGroup;
  private producer?: Producer;
  /** Exactly-once: the transactional producer being created (shared by the warm-up and the first sync). */
  private creatingTransactions?: Promise<TransactionGroup>;
  /** Bumped by close(): a producer connected for an earlier generation is dropped. */
  private generation = 0;
  private warming = false;
  /** At-least-once without the direct sender: the pair's kafkajs producer. */
  fallbackProducer?: Producer;
  /** One reconciliation of the consumer at a time. */
  private syncing: Promise<void> = Promise.resolve();
  /** A restart, a rebalance seen by a heartbeat, or a stop is finishing the sends in flight: no new slice. */
  private quiet = 0;
  private revoking?: Promise<void>;
  /** The consumer crashed for good: the next sync creates a new one. */
  private crashed = false;
  private stopped = false;
  private readonly commitQueue: PendingCommit[] = [];
  private commitTimer?: NodeJS.Timeout;
  readonly log: Logger;

  constructor(
    private readonly ctx: EngineContext,
    private readonly dcs: Datacenters,
    readonly sourceDc: string,
    readonly destinationDc: string,
  ) {
    this.groupId = `${OWN_TOPIC_PREFIX}${ctx.config().replicator.id}.${sourceDc}.${destinationDc}`;
    this.log = ctx.logger.child({ link: `${sourceDc}->${destinationDc}` });
  }

  static key(sourceDc: string, destinationDc: string): string {
    return `${sourceDc}\u0000${destinationDc}`;
  }

  /** Whether no new slice may start (the flows check before each one). */
  get quieting(): boolean {
    return this.quiet > 0 || this.revoking !== undefined || this.stopped;
  }

  /**
   * Exactly-once: gets the destination's transaction and group coordinators going while the targets are
   * prepared. On a fresh cluster their internal topics are created on first use, and when first asked
   * for after thousands of target topics they came up behind them (the link could not start for 50 s
   * at 10,000 topics). Failures only log: the first sync does the same and retries.
   */
  warmUp(): void {
    if (this.ctx.delivery !== "exactly-once" || this.warming || this.stopped) return;
    this.warming = true;
    const dst = this.dcs.get(this.destinationDc);
    const started = Date.now();
    void Promise.all([
      this.ensureTransactions(dst).then((transactions) => transactions.settled()),
      connectAdmin(dst).then(() => dst.admin.fetchOffsets({ groupId: this.groupId })),
    ]).then(
      () => this.log.debug({ ms: Date.now() - started }, "destination coordinators ready"),
      (err: unknown) => this.log.debug({ err: errorFields(err) }, "warm-up failed; the first sync retries"),
    );
  }

  add(flow: LinkFlow): void {
    this.flows.set(flow.pipeline.sourceTopic, flow);
  }

  /** Forgets a stopped flow; the next sync drops its topic. */
  remove(flow: LinkFlow): void {
    if (this.flows.get(flow.pipeline.sourceTopic) === flow) this.flows.delete(flow.pipeline.sourceTopic);
  }

  get empty(): boolean {
    return this.flows.size === 0;
  }

  /**
   * Reconciles the consumer with the flows ready to replicate: (re)starts it when the topic set changed
   * or it crashed, closes it when no flow is left. One at a time; a failure is logged and retried by the
   * next round.
   */
  sync(): Promise<void> {
    const next = this.syncing.then(() => this.syncOnce());
    this.syncing = next.catch((err: unknown) => {
      this.ctx.metrics.errors.inc({ kind: "pipeline-start" });
      this.log.warn({ err: errorFields(err) }, "link consumer not started; retrying next round");
      this.crashed = true;
      for (const flow of this.flows.values()) if (flow.state === "starting") flow.fail(err);
    });
    return this.syncing;
  }

  private wanted(): Map<string, LinkFlow> {
    return new Map([...this.flows.values()].filter((f) => f.ready).map((f) => [f.pipeline.sourceTopic, f]));
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const wanted = this.wanted();
    if (wanted.size === 0) {
      if (this.consumer || this.producer || this.fallbackProducer) await this.close("no topic to replicate");
      return;
    }
    const same =
      wanted.size === this.subscribed.size && [...wanted].every(([t, f]) => this.subscribed.get(t) === f);
    if (this.consumer && same && !this.crashed) return;
    const exactlyOnce = this.ctx.delivery === "exactly-once";
    const started = Date.now();
    if (this.consumer) {
      await this.finishInFlight(ALO_REBALANCE_DRAIN_MS);
      // kafkajs keeps every subscription: a topic gone needs a new consumer (new connections), and so does
      // a topic whose flow started again (partitions added: a new consumer reads fresh metadata).
      const removed =
        [...this.everSubscribed].some((t) => !wanted.has(t)) ||
        [...this.subscribed].some(([t, f]) => wanted.has(t) && wanted.get(t) !== f);
      if (removed || this.crashed) {
        await this.consumer.disconnect().catch(() => undefined);
        this.consumer = undefined;
        this.everSubscribed.clear();
      } else await this.consumer.stop();
      this.subscribed.clear();
    }
    this.crashed = false;
    this.quiet++;
    try {
      const src = this.dcs.get(this.sourceDc);
      const destinationReady = this.destinationReady(wanted);
      const consumer = (this.consumer ??= this.newConsumer(src.kafka));
      const added = [...wanted.keys()].filter((t) => !this.everSubscribed.has(t));
      const sourceReady = (async () => {
        await consumer.connect();
        if (added.length > 0) await consumer.subscribe({ topics: added, fromBeginning: true });
        for (const t of added) this.everSubscribed.add(t);
        if (!exactlyOnce)
          await this.inheritPositions(
            src,
            [...wanted.values()].filter((f) => !f.joinedOnce),
          );
      })();
      const [destination, source] = await Promise.allSettled([destinationReady, sourceReady]);
      if (destination.status === "rejected") throw destination.reason;
      if (source.status === "rejected") throw source.reason;
      if (this.stopped) return;
      this.subscribed = wanted;
      await consumer.run({
        // At-least-once commits the acknowledged positions itself (./commits.ts); exactly-once keeps its
        // positions in the destination. Resolved offsets only move kafkajs's fetch position.
        autoCommit: false,
        partitionsConsumedConcurrently: handedOverAtOnce(this.ctx.config().replicator.partitionConcurrency, [
          ...wanted.values(),
        ]),
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.route(payload),
      });
      if (exactlyOnce) {
        // Only this engine's partitions; kafkajs applies a seek when the partition is fetched after the
        // group assigned it, and ignores seeks of partitions it does not own.
        for (const flow of wanted.values()) flow.seekStart();
      }
    } finally {
      this.quiet--;
    }
    for (const flow of wanted.values()) flow.started();
    this.log.info(
      {
        groupId: this.groupId,
        topics: wanted.size,
        ms: Date.now() - started,
        ...(exactlyOnce
          ? { transactionalId: `${this.groupId}.${this.ctx.engine.index}`, engines: this.ctx.engine.count }
          : {}),
      },
      "link consumer started",
    );
  }

  /**
   * The destination side: exactly-once, the pair's transactional producer (created once) and the
   * positions of every wanted topic, read from the destination group after the transactional id is
   * initialised (TransactionGroup.settled: the broker answers that only after a pending commit of an
   * earlier producer of these partitions completed, so the positions are final).
   */
  private async destinationReady(wanted: ReadonlyMap<string, LinkFlow>): Promise<void> {
    const dst = this.dcs.get(this.destinationDc);
    if (this.ctx.delivery !== "exactly-once") {
      const flows = [...wanted.values()];
      if (flows.some((f) => f.needsFallbackProducer) && !this.fallbackProducer) {
        const producer = linkProducer(this.ctx, dst, this.groupId);
        await producer.connect();
        this.fallbackProducer = producer;
      }
      return;
    }
    const transactions = await this.ensureTransactions(dst);
    await transactions.settled();
    await connectAdmin(dst);
    // Positions are kept under the target topic's name (the source's may not exist in the destination, and
    // Kafka refuses offsets of a topic it does not have) with the source partition's number.
    const flows = [...wanted.values()];
    const targets = flows.map((f) => f.pipeline.targetTopic);
    const positions = await groupPositions(dst.admin, this.groupId, targets);
    const inherited = await this.inherited(dst, positions, flows, (f) => f.pipeline.targetTopic);
    for (const flow of flows) {
      const { sourceTopic, targetTopic } = flow.pipeline;
      const own = new Map<number, bigint>();
      for (const [partition, offset] of [
        ...(inherited.get(targetTopic) ?? []),
        ...(positions.get(targetTopic) ?? []),
      ])
        if (ownsPartition(this.ctx.engine, sourceTopic, partition)) own.set(partition, BigInt(offset));
      flow.startAt(own);
    }
  }

  /** Exactly-once: the pair's transactional producer and its TransactionGroup, created once. */
  private ensureTransactions(dst: Datacenter): Promise<TransactionGroup> {
    if (this.transactions) return Promise.resolve(this.transactions);
    const generation = this.generation;
    this.creatingTransactions ??= (async () => {
      const producer = linkProducer(this.ctx, dst, this.groupId);
      await producer.connect();
      if (generation !== this.generation) {
        await producer.disconnect().catch(() => undefined);
        throw new Error("link closed while its transactional producer connected");
      }
      this.producer = producer;
      this.transactions = new TransactionGroup(
        producer,
        this.groupId,
        (txn, topicMessages) => sendAcknowledged(txn, topicMessages),
        async () => {
          const fresh = linkProducer(this.ctx, dst, this.groupId);
          await fresh.connect();
          const old = this.producer;
          this.producer = fresh;
          await old?.disconnect().catch(() => undefined);
          return fresh;
        },
      );
      return this.transactions;
    })().finally(() => {
      this.creatingTransactions = undefined;
    });
    return this.creatingTransactions;
  }

  /**
   * At-least-once: new flows whose partitions have no position in this pair's group yet take their
   * pipeline's old group's (./migration.ts); applied when the group assigns them.
   */
  private async inheritPositions(src: Datacenter, flows: LinkFlow[]): Promise<void> {
    if (flows.length === 0) return;
    await connectAdmin(src);
    const topics = flows.map((f) => f.pipeline.sourceTopic);
    const current = await groupPositions(src.admin, this.groupId, topics);
    const inherited = await this.inherited(src, current, flows, (f) => f.pipeline.sourceTopic);
    for (const flow of flows) {
      const positions = inherited.get(flow.pipeline.sourceTopic);
      if (positions) flow.inherit(positions);
    }
  }

  /**
   * The old groups' positions for the partitions `current` lacks, keyed as `current` is (`keyOf`: the
   * source topic in the source cluster, the target topic in the destination); none when the cluster
   * refuses to say.
   */
  private async inherited(
    dc: Datacenter,
    current: Positions,
    flows: LinkFlow[],
    keyOf: (flow: LinkFlow) => string,
  ): Promise<Positions> {
    const id = this.ctx.config().replicator.id;
    const byKey = new Map(flows.map((f) => [keyOf(f), f]));
    try {
      return await inheritedPositions(
        dc.admin,
        current,
        [...byKey.keys()],
        (key) => byKey.get(key)?.sourcePartitions ?? 0,
        (key) => legacyGroupId(id, this.sourceDc, byKey.get(key)!.pipeline.sourceTopic, this.destinationDc),
      );
    } catch (err) {
      // Listing or reading groups refused (ACLs): no upgrade positions, every partition starts as configured.
      this.log.debug({ err: errorFields(err) }, "positions of the groups before the upgrade not read");
      return new Map();
    }
  }

  private newConsumer(kafka: Parameters<typeof createSourceConsumer>[1]): Consumer {
    const consumer = createSourceConsumer(this.ctx, kafka, this.groupId, this.log);
    const exactlyOnce = this.ctx.delivery === "exactly-once";
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (this.consumer !== consumer) return;
      this.revoking = undefined;
      const assignment = event.payload.memberAssignment;
      let partitions = 0;
      const named: Record<string, number[]> = {};
      for (const [topic, assigned] of Object.entries(assignment)) {
        partitions += assigned.length;
        if (Object.keys(named).length < LOGGED_TOPICS) named[topic] = [...assigned].sort((a, b) => a - b);
      }
      for (const [topic, flow] of this.subscribed) flow.assignedNow(assignment[topic] ?? []);
      this.log.info(
        {
          groupId: this.groupId,
          topics: Object.keys(assignment).length,
          partitions,
          assigned: named,
          ...(Object.keys(assignment).length > LOGGED_TOPICS ? { truncated: true } : {}),
        },
        "partitions assigned",
      );
    });
    if (!exactlyOnce) {
      // A rebalance is starting: commit what was acknowledged now, before the group hands the partitions
      // out again, so that a partition moving to another member is not re-read from an older position.
      consumer.on(consumer.events.REBALANCING, () => {
        if (this.consumer === consumer) void this.commitAll();
      });
    }
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.consumer !== consumer) return;
      const restart = (event.payload as { restart?: boolean }).restart;
      this.ctx.metrics.errors.inc({ kind: "consumer" });
      this.log.error({ err: errorFields(event.payload.error), restart }, "link consumer crashed");
      if (!restart) {
        this.crashed = true;
        this.ctx.wake();
      }
    });
    return consumer;
  }

  /** A fetched batch (one topic-partition) goes to its topic's flow. */
  private async route(payload: EachBatchPayload): Promise<void> {
    const flow = this.subscribed.get(payload.batch.topic);
    if (!flow) return;
    try {
      await flow.replicateBatch(payload);
    } catch (err) {
      this.ctx.metrics.errors.inc({ kind: "replicate" });
      flow.log.warn({ err: errorFields(err) }, "batch not replicated (not committed; will be retried)");
      throw err;
    }
  }

  /** Pauses or resumes fetching a topic's partitions (every partition when none are given). */
  pause(topic: string, partitions?: number[]): void {
    this.consumer?.pause([partitions ? { topic, partitions } : { topic }]);
  }

  resume(topic: string, partitions: number[]): void {
    this.consumer?.resume([{ topic, partitions }]);
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer?.seek({ topic, partition, offset });
  }

  /**
   * Commits a flow's positions to the pair's group; the commits of every flow within
   * LINK_COMMIT_BATCH_MS go in one request.
   */
  commit(topic: string, positions: readonly CommitPosition[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.commitQueue.push({
        positions: positions.map((p) => ({ topic, ...p })),
        settle: (error) => (error === undefined ? resolve() : reject(error)),
      });
      this.commitTimer ??= setTimeout(() => void this.flushCommits(), LINK_COMMIT_BATCH_MS);
    });
  }

  private async flushCommits(): Promise<void> {
    this.commitTimer = undefined;
    const batch = this.commitQueue.splice(0);
    if (batch.length === 0) return;
    try {
      if (!this.consumer) throw new Error("the link consumer is not running");
      const consumer = this.consumer;
      await Promise.all(
        commitRequests(
          batch.flatMap((c) => c.positions),
          COMMIT_TOPICS_PER_REQUEST,
        ).map((positions) => consumer.commitOffsets(positions)),
      );
      for (const c of batch) c.settle();
    } catch (err) {
      for (const c of batch) c.settle(err ?? new Error("commit failed"));
    }
  }

  /**
   * At-least-once, a rebalance seen by a heartbeat: start no new slice, let the sends in flight finish (at
   * most ALO_REBALANCE_DRAIN_MS) and commit what was acknowledged, then let kafkajs rejoin — as the Java
   * consumer's commit in `onPartitionsRevoked`. The batches of every topic share one wait.
   */
  beforeRejoin(): Promise<void> {
    this.revoking ??= (async () => {
      const inFlight = [...this.flows.values()].reduce((n, f) => n + f.inFlight, 0);
      this.log.info({ inFlight }, "rebalance: finishing the sends in flight and committing before rejoining");
      await this.drainAndCommit(ALO_REBALANCE_DRAIN_MS);
    })();
    return this.revoking;
  }

  /** No new slice; the sends in flight finish (at most `drainMs`) and what was acknowledged is committed. */
  private async finishInFlight(drainMs: number): Promise<void> {
    this.quiet++;
    try {
      await this.drainAndCommit(drainMs);
    } finally {
      this.quiet--;
    }
  }

  private async drainAndCommit(drainMs: number): Promise<void> {
    const flows = [...this.flows.values()];
    await Promise.race([Promise.all(flows.map((f) => f.drain())), sleep(drainMs, { unref: true })]);
    await this.commitAll();
  }

  /**
   * Commits every flow's acknowledged positions now, in one request: at a rebalance the group still takes
   * the current generation's commits only until it rejoins.
   */
  private async commitAll(): Promise<void> {
    const done = [...this.flows.values()].map((f) => f.commits.commitNow());
    clearTimeout(this.commitTimer);
    await Promise.all([this.flushCommits(), ...done]);
  }

  /** Graceful stop (shutdown, or no flow left): the sends in flight finish and are committed, clients close. */
  async stop(reason: string): Promise<void> {
    await this.syncing;
    await this.close(reason);
    this.stopped = true;
  }

  private async close(reason: string): Promise<void> {
    // Quiet from the drain to the disconnect: a slice started between the final commit and the
    // disconnect would be acknowledged and never committed, and copied again after a restart.
    this.quiet++;
    this.generation++;
    try {
      if (this.consumer) {
        this.consumer.pause([...this.subscribed.keys()].map((topic) => ({ topic })));
        await this.drainAndCommit(ALO_STOP_DRAIN_MS);
      }
      try {
        await this.consumer?.disconnect();
        await this.producer?.disconnect();
        await this.fallbackProducer?.disconnect();
      } catch (err) {
        this.log.warn({ err: errorFields(err) }, "link disconnect failed");
      }
    } finally {
      this.quiet--;
    }
    if (this.consumer) this.log.info({ reason }, "link consumer stopped");
    this.consumer = undefined;
    this.producer = undefined;
    this.transactions = undefined;
    this.fallbackProducer = undefined;
    this.subscribed.clear();
    this.everSubscribed.clear();
  }
}

/**
 * kafkajs's `partitionsConsumedConcurrently` for the flows a consumer reads: "auto" is every partition
 * they have (a source that grows partitions starts its flow, and so the consumer, again).
 */
export function handedOverAtOnce(
  setting: number | "auto",
  flows: readonly Pick<LinkFlow, "sourcePartitions">[],
): number {
  if (setting !== "auto") return setting;
  return Math.max(
    1,
    flows.reduce((sum, f) => sum + f.sourcePartitions, 0),
  );
}
