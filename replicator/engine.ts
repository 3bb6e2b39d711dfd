/**
 * The replication engine (kafkajs): a discovery loop that lists the topics of every datacenter,
 * plans the pipelines, creates target topics and runs one consumer group per pipeline.
 *
 * Why one consumer per pipeline: a running kafkajs consumer cannot add subscriptions, so each
 * (source dc, source topic, destination dc) pipeline has its own consumer that starts when the
 * topic is discovered (from the earliest offset) and stops when the topic or the rule goes away.
 *
 * Delivery is at-least-once by default: records go straight to the target partitions' leaders with
 * acks=all (./direct-producer.ts), and a source offset is committed only after the destination
 * acknowledged every record before it (./ordered-sends.ts). Sends are pipelined with the fetches: the
 * consumer reads on while up to `ALO_SENDS_PER_PARTITION` sends of a partition are in flight, one at a
 * time and in order; acknowledged positions are committed in the background, one commit at a time, and
 * when the pipeline stops. Up to `partitionConcurrency` source partitions are replicated at the same
 * time. Exactly-once writes records and source positions in destination transactions shared by the
 * partitions replicated together (./transactions.ts).
 * Produce requests are encoded by ./produce-encoding.ts (kafkajs's bytes, written faster).
 * kafkajs itself gets two fixes: no idle 1 ms timer per connection (./kafkajs-request-queue.ts) and cached
 * coordinators, transactions retried at once (./kafkajs-transactions.ts).
 */
import type { Logger } from "pino";
import kafkajs from "kafkajs";
import type {
  Admin,
  Consumer,
  EachBatchPayload,
  IHeaders,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
} from "kafkajs";
import { OWN_TOPIC_PREFIX, type DatacenterConfig, type ReplicatorConfig } from "./config.js";
import type { Health } from "./aggregate.js";
import { splitRecordSized, type RecordLike } from "./chunking.js";
import { ConfigError, ReplicatorError } from "./errors.js";
import { planRejoin } from "./rejoin.js";
import { OrderedSends } from "./ordered-sends.js";
import { createMetrics, type ReplicatorMetrics } from "./metrics.js";
import { randomUUID } from "node:crypto";
import { REGISTRY_TOPIC, parseRegistration, type Registration } from "./registry.js";
import { decideRecord, planPipelines, policyFor, type Pipeline } from "./plan.js";
import { withProvenance, type Headers, type ReplicationPolicy } from "./policy.js";
import { protocolErrorCode, REBALANCE_IN_PROGRESS } from "../kafka/protocol.js";
import { DirectProducer } from "../kafka/direct-producer.js";
import { createKafka } from "../kafka/client.js";
import { PlatformError } from "../common/errors.js";
import { sleep } from "../common/time.js";
import { errorText } from "../common/log.js";
import { TransactionGroup } from "./transactions.js";
import {
  isValidSlot,
  ownsAnyPartition,
  ownsPartition,
  staticPartitionAssigner,
  type EngineSlot,
} from "./assignment.js";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { ConfigResourceTypes } = kafkajs;

/** Topic configs copied from the source topic to the target topic when set on the source. */
export const COPIED_TOPIC_CONFIGS = [
  "cleanup.policy",
  "retention.ms",
  "retention.bytes",
  "max.message.bytes",
  "min.compaction.lag.ms",
  "delete.retention.ms",
  "compression.type",
  "message.timestamp.type",
] as const;

/**
 * Leader election through Kafka: replicators with the same id join the consumer group
 * `lp.replicator.<id>.election` on this one-partition topic of their home datacenter; the member that
 * is assigned partition 0 is the leader and the only one that creates target topics and partitions.
 */
export const ELECTION_TOPIC = `${OWN_TOPIC_PREFIX}election`;

/** Room left in a record batch for its own header. */
const BATCH_OVERHEAD = 512;
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
const FETCH_MAX_BYTES_PER_PARTITION = 4 * 1024 * 1024;
const FETCH_MAX_BYTES = 32 * 1024 * 1024;
/**
 * At-least-once: produce requests in flight per pipeline; partitions that become ready meanwhile share the
 * next request (fewer, larger requests than one per partition).
 */
const DIRECT_REQUESTS_IN_FLIGHT = 2;
/**
 * At-least-once: slices of one source partition queued or in flight before the fetch loop waits. The
 * consumer fetches the next records while a partition's send is out, instead of send → ack → commit →
 * fetch in turn (that cycle added its round trips to every record's latency).
 */
const ALO_SENDS_PER_PARTITION = 2;
/**
 * At-least-once: acknowledged source positions are committed this long after an acknowledgement, one
 * commit at a time (later acknowledgements join the next). kafkajs sends the commit on the connection its
 * fetches use, and the broker answers one request per connection at a time, so back-to-back commits
 * delayed the fetches: with 0 ms the latency phase gave p50 22–48 ms, with 50 ms 16–27 ms, with 200 ms
 * 16–31 ms (3 runs each); 200 ms left 1,640–2,700 duplicates after two SIGKILLs in the CLI test, 0 ms 161.
 * Hence `replicator.commitIntervalMs` defaults to 50 ms.
 */
/**
 * Exactly-once: the source group's copy of the positions (monitoring, shorter re-reads) is committed this
 * long after a transaction, coalesced. It was one commit per slice and transaction, each queued on the
 * consumer's connection with its fetches.
 */
const EOS_SOURCE_COMMIT_MS = 1000;
/** At-least-once: a failed commit is tried again after this delay. */
const ALO_COMMIT_RETRY_MS = 200;
/**
 * At-least-once: how long a member that learnt of a rebalance from a heartbeat waits for its sends in
 * flight before it commits and rejoins (well within the rebalance timeout, `sessionTimeoutMs`).
 */
const ALO_REBALANCE_DRAIN_MS = 1000;
/** At-least-once: how long a stopping pipeline waits for its sends in flight before it commits. */
const ALO_STOP_DRAIN_MS = 10_000;
/**
 * How long a pipeline of an engine that is not the leader waits for the leader to create its target
 * topic (capped at two discovery intervals) before it gives up until the next round. The leader sees
 * a new topic at most one interval after this engine does; without the wait, the partitions of a new
 * topic that other engines own started one or two intervals after the leader's.
 */
const LEADER_TARGET_WAIT_MS = 5000;
/**
 * A slice: the source records of one partition sent and acknowledged together (in order per partition). At-least-once:
 * what fills one produce request (the destination's batch limit), at most 1,000 records — one round
 * trip each, and no small remainder request (1,000 records of 1 KiB plus provenance headers took a full
 * request and a small one, each awaited, and drained 30 % slower). Exactly-once: up to 4 requests' worth,
 * at most 4,000 records, as one member of a transaction (each transaction costs five round trips).
 */
const SLICE_LIMITS = {
  "at-least-once": { records: 1000, requests: 1 },
  "exactly-once": { records: 4000, requests: 4 },
} as const;
/**
 * Retries of the exactly-once (transactional) producer. The broker answers CONCURRENT_TRANSACTIONS to the
 * first request of a transaction while it still writes the previous one's commit markers — normal when
 * transactions follow each other closely, as here. kafkajs retries it with the producer's retry backoff;
 * with 300 ms as the first step a transaction took 28 ms at the median but 1.7 s at p99 (200 commits on
 * a local broker); starting at 5 ms and growing by 1.3× took 11 ms and 44 ms (the Java producer does the
 * same: KAFKA-5477). 30 retries still wait about 35 s in all before a broker outage fails the transaction,
 * close to the 39 s of the other producers' 10 retries from 300 ms.
 */
const TRANSACTIONAL_RETRY = { retries: 30, initialRetryTime: 5, multiplier: 1.3, maxRetryTime: 5000 };
const PRODUCER_RETRY = { retries: 10, initialRetryTime: 300, maxRetryTime: 5000 };

type DcState = {
  config: DatacenterConfig;
  kafka: Kafka;
  admin: Admin;
  adminConnected: boolean;
  reachable: boolean;
  lastError?: string;
  failures: number;
  nextAttemptAt: number;
  /** Whether the datacenter has the registry topic, its reader, and the registrations read so far. */
  hasRegistry: boolean;
  registryReader?: Consumer;
  registrations: Map<string, Registration>;
  /** The discovery in flight, if any. */
  discovery?: Promise<void>;
  /** Topic → partition count, from the last successful discovery. */
  topics: Map<string, number>;
};

type PartitionProgress = { lastOffset: string; committed: string; records: number };

type PipelineRun = {
  pipeline: Pipeline;
  policy: ReplicationPolicy;
  groupId: string;
  consumer?: Consumer;
  state: "starting" | "running" | "stopping" | "failed";
  error?: string;
  sourcePartitions: number;
  targetPartitions: number;
  maxBatchBytes: number;
  /**
   * The pipeline's own producer, created after the target topic is known so that its metadata has every
   * target partition (kafkajs silently drops records for partitions missing from its metadata).
   */
  producer?: Producer;
  /** At-least-once: the sender straight to the target partitions' leaders (instead of `producer`). */
  direct?: DirectProducer;
  /** Exactly-once mode: the shared destination transaction of the slices replicated at the same time. */
  transactions?: TransactionGroup;
  /** Exactly-once mode: per source partition, the next offset to replicate as committed in the destination. */
  eosStart?: Map<number, bigint>;
  /** At-least-once: the sends per source partition, in order, pipelined with the fetches. */
  sends?: OrderedSends;
  /**
   * Per source partition, the next offset after the records the destination acknowledged (at-least-once)
   * or committed (exactly-once).
   */
  acked: Map<number, string>;
  /** At-least-once: the positions last committed to the source group (partition → offset). */
  committed: Map<number, string>;
  commitTimer?: NodeJS.Timeout;
  committing?: Promise<void>;
  /**
   * At-least-once: a heartbeat saw a rebalance; the sends in flight finish and are committed first. Kept
   * until the next join: no new slice starts meanwhile.
   */
  revoking?: Promise<void>;
  /** At-least-once: positions were acknowledged while a commit was in flight. */
  commitAgain?: boolean;
  partitions: Map<number, PartitionProgress>;
  /** Source partitions assigned to this replicator by the pipeline's consumer group. */
  assigned: number[];
  /** Whether the consumer joined the group at least once (a later join is a rejoin). */
  joined?: boolean;
  records: number;
  bytes: number;
  skipped: number;
  startedAt: number;
};

export interface ReplicatorOptions {
  logger: Logger;
  metrics?: ReplicatorMetrics;
  /**
   * This engine's place among the engines of its process (./pool.ts); default index 0 of 1. Exactly-once
   * uses it for the static partition split and the transactional ids (./assignment.ts).
   */
  engine?: EngineSlot;
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
  partitions: { partition: number; lastReplicatedOffset: string; committedOffset: string; lag?: number }[];
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

/** Records cut, in order, into requests that stay within the destination's batch limit. */
function toRequests(records: RecordLike[], sizes: number[], maxBatchBytes: number): Message[][] {
  const requests: Message[][] = [];
  let chunk: Message[] = [];
  let size = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const s = sizes[i]!;
    if (size + s > maxBatchBytes && chunk.length > 0) {
      requests.push(chunk);
      chunk = [];
      size = 0;
    }
    const message: Message = {
      key: r.key,
      value: r.value,
      headers: r.headers as IHeaders,
      partition: r.partition,
    };
    if (r.timestamp !== undefined) message.timestamp = r.timestamp;
    chunk.push(message);
    size += s;
  }
  if (chunk.length > 0) requests.push(chunk);
  return requests;
}

/** Delivery through a kafkajs producer or transaction: acks=all, and every partition sent to acknowledged. */
function viaKafkajs(producer: Pick<Producer, "send">, topic: string) {
  return async (messages: Message[]): Promise<void> => {
    const wanted = new Set(messages.map((m) => m.partition));
    const acked = await producer.send({ topic, acks: -1, messages });
    // kafkajs drops records for a partition missing from its metadata without an error: never accept that.
    for (const partition of wanted) {
      if (!acked.some((a) => a.topicName === topic && a.partition === partition && a.errorCode === 0)) {
        throw new ReplicatorError(
          "NOT_ACKNOWLEDGED",
          `${topic}[${partition}]: no acknowledgement from the destination (stale metadata?)`,
          { retriable: true },
        );
      }
    }
  };
}

export class Replicator {
  private config: ReplicatorConfig;
  private readonly logger: Logger;
  readonly metrics: ReplicatorMetrics;
  private readonly dcs = new Map<string, DcState>();
  private readonly runs = new Map<string, PipelineRun>();
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private rounds = 0;
  private lastRoundAt?: number;
  private lastRoundMs?: number;
  private readonly discovered = new Set<string>();
  private leader = false;
  private roundInFlight?: Promise<void>;
  private election?: Consumer;
  private readonly engine: EngineSlot;
  /** The delivery this engine started with: a change takes effect after a restart (see updateConfig). */
  private readonly delivery: ReplicatorConfig["replicator"]["delivery"];

  constructor(config: ReplicatorConfig, options: ReplicatorOptions) {
    this.config = config;
    this.delivery = config.replicator.delivery;
    this.engine = options.engine ?? { index: 0, count: 1 };
    if (!isValidSlot(this.engine))
      throw new ReplicatorError(
        "INVALID_ENGINE",
        `engine index ${this.engine.index} of ${this.engine.count} engines is not valid`,
      );
    this.logger = options.logger;
    this.metrics = options.metrics ?? createMetrics();
    this.metrics.onCollectLag = async () => {
      await this.refreshLag().catch(() => undefined);
    };
  }

  get currentConfig(): ReplicatorConfig {
    return this.config;
  }

  /** Starts the discovery loop; resolves after the first discovery round. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.logger.info({ id: this.config.replicator.id }, "replicator starting");
    if (this.config.replicator.leaderElection) await this.startElection();
    if (!this.running) {
      // stop() was called while the election started.
      await this.election?.disconnect().catch(() => undefined);
      this.election = undefined;
      return;
    }
    await this.round();
    this.loop = this.discoveryLoop();
  }

  /**
   * Applies a new configuration; the next discovery round reconciles the pipelines. A changed
   * `replicator.delivery` takes effect after a restart: exactly-once engines split partitions statically
   * and at-least-once ones round-robin, and one consumer group cannot mix the two protocols
   * (INCONSISTENT_GROUP_PROTOCOL) — nor may an at-least-once engine take partitions whose transactional
   * id another engine holds.
   */
  updateConfig(config: ReplicatorConfig): void {
    if (config.replicator.delivery !== this.delivery) {
      this.logger.warn(
        { running: this.delivery, configured: config.replicator.delivery },
        "replicator.delivery changed: takes effect after a restart",
      );
      config = { ...config, replicator: { ...config.replicator, delivery: this.delivery } };
    }
    this.config = config;
    for (const [name, dc] of this.dcs) {
      const next = config.datacenters.find((d) => d.name === name);
      if (!next || JSON.stringify(next) !== JSON.stringify(dc.config)) {
        // Changed or removed datacenter: drop its clients; pipelines using it restart on the next round.
        for (const run of [...this.runs.values()]) {
          if (run.pipeline.sourceDc === name || run.pipeline.destinationDc === name) {
            void this.stopPipeline(run, "datacenter configuration changed");
          }
        }
        this.dcs.delete(name);
        void this.closeDc(dc);
      }
    }
    this.logger.info("configuration updated");
    this.wake?.();
  }

  /** Graceful stop: no new discovery, each consumer finishes and commits its batch, clients disconnect. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.roundInFlight?.catch(() => undefined);
    await Promise.all([...this.runs.values()].map((run) => this.stopPipeline(run, "shutdown")));
    await Promise.all([...this.dcs.values()].map((dc) => dc.discovery ?? Promise.resolve()));
    const election = this.election;
    this.election = undefined;
    this.leader = false;
    await election?.disconnect().catch(() => undefined);
    await Promise.all([...this.dcs.values()].map((dc) => this.closeDc(dc)));
    this.dcs.clear();
    this.logger.info("replicator stopped");
  }

  private async discoveryLoop(): Promise<void> {
    while (this.running) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.config.discovery.intervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (!this.running) break;
      try {
        await this.round();
      } catch (err) {
        this.metrics.errors.inc({ kind: "discovery" });
        this.logger.error({ err }, "discovery round failed");
      }
    }
  }

  private dc(name: string): DcState {
    let dc = this.dcs.get(name);
    if (dc) return dc;
    const config = this.config.datacenters.find((d) => d.name === name);
    if (!config) throw new ReplicatorError("UNKNOWN_DATACENTER", `unknown datacenter '${name}'`);
    const kafka = createKafka(
      {
        clientId: config.clientId ?? `lp-replicator-${this.config.replicator.id}-${name}`,
        brokers: config.brokers,
        connectionTimeoutMs: config.connectionTimeoutMs,
        requestTimeoutMs: config.requestTimeoutMs,
        // Admin calls fail fast (the discovery loop retries with backoff); producers and consumers set their own.
        retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
      },
      this.logger.child({ datacenter: name }),
    );
    dc = {
      config,
      kafka,
      admin: kafka.admin(),
      adminConnected: false,
      reachable: true,
      failures: 0,
      nextAttemptAt: 0,
      topics: new Map(),
      hasRegistry: false,
      registrations: new Map(),
    };
    this.dcs.set(name, dc);
    return dc;
  }

  private async closeDc(dc: DcState): Promise<void> {
    const reader = dc.registryReader;
    dc.registryReader = undefined;
    await Promise.all([
      dc.admin.disconnect().catch(() => undefined),
      reader?.disconnect().catch(() => undefined),
    ]);
  }

  /** Whether this instance may create target topics: the elected leader, or every instance without election. */
  get isLeader(): boolean {
    return !this.config.replicator.leaderElection || this.leader;
  }

  /** Joins the election group in the home datacenter; resolves after the first assignment (or 15 s). */
  private async startElection(): Promise<void> {
    const home = this.config.replicator.datacenter ?? this.config.datacenters[0]?.name;
    if (home === undefined) return;
    const dc = this.dc(home);
    const groupId = `${OWN_TOPIC_PREFIX}${this.config.replicator.id}.election`;
    const consumer = dc.kafka.consumer({
      groupId,
      sessionTimeout: this.config.replicator.sessionTimeoutMs,
      rebalanceTimeout: this.config.replicator.sessionTimeoutMs,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    });
    this.election = consumer;
    let joined: () => void = () => undefined;
    const firstJoin = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const lead = (event.payload.memberAssignment[ELECTION_TOPIC] ?? []).includes(0);
      if (lead !== this.leader)
        this.logger.info({ groupId, leader: lead }, lead ? "elected leader" : "follower");
      this.leader = lead;
      joined();
      if (lead) this.wake?.();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      this.leader = false;
      this.logger.warn({ err: errorText(event.payload.error) }, "election consumer crashed");
    });
    try {
      if (!dc.adminConnected) {
        await dc.admin.connect();
        dc.adminConnected = true;
      }
      if (!(await dc.admin.listTopics()).includes(ELECTION_TOPIC)) {
        await dc.admin
          .createTopics({ waitForLeaders: true, topics: [{ topic: ELECTION_TOPIC, numPartitions: 1 }] })
          .catch((err: unknown) => {
            if (!/already exists/i.test(errorText(err))) throw err;
          });
      }
      await consumer.connect();
      await consumer.subscribe({ topics: [ELECTION_TOPIC] });
      await consumer.run({ eachMessage: async () => undefined });
      await Promise.race([firstJoin, sleep(15_000, { unref: true })]);
    } catch (err) {
      this.metrics.errors.inc({ kind: "election" });
      this.logger.warn({ err: errorText(err) }, "leader election failed to start; retrying next round");
      this.election = undefined;
      await consumer.disconnect().catch(() => undefined);
    }
  }

  /** Reads a datacenter's registry topic from the beginning (fresh group) and keeps following it. */
  private async startRegistryReader(dc: DcState): Promise<void> {
    const consumer = dc.kafka.consumer({
      groupId: `${OWN_TOPIC_PREFIX}${this.config.replicator.id}.registry.${dc.config.name}.${randomUUID()}`,
      sessionTimeout: this.config.replicator.sessionTimeoutMs,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 200,
      allowAutoTopicCreation: false,
    });
    dc.registryReader = consumer;
    const log = this.logger.child({ datacenter: dc.config.name });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [REGISTRY_TOPIC], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          const key = message.key?.toString();
          if (key === undefined) return;
          try {
            const { topic, registration } = parseRegistration(key, message.value);
            if (registration) {
              dc.registrations.set(topic, registration);
              log.info({ registration }, "application registered");
            } else if (dc.registrations.delete(topic)) {
              log.info({ topic }, "application unregistered");
            }
            this.wake?.();
          } catch (err) {
            this.metrics.errors.inc({ kind: "registration" });
            log.error(
              { err: err instanceof ConfigError ? err.issues : errorText(err) },
              "invalid registration ignored",
            );
          }
        },
      });
    } catch (err) {
      this.metrics.errors.inc({ kind: "registry" });
      log.warn({ err: errorText(err) }, "registry reader failed to start; retrying next round");
      dc.registryReader = undefined;
      await consumer.disconnect().catch(() => undefined);
    }
  }

  /** Lists the topics (and partition counts) of a datacenter; on failure marks it unreachable with backoff. */
  private async discover(dc: DcState): Promise<void> {
    if (Date.now() < dc.nextAttemptAt) return;
    try {
      if (!dc.adminConnected) {
        await dc.admin.connect();
        dc.adminConnected = true;
      }
      const all = await dc.admin.listTopics();
      dc.hasRegistry = all.includes(REGISTRY_TOPIC);
      const names = all.filter((t) => !t.startsWith("__") && !t.startsWith(OWN_TOPIC_PREFIX));
      const metadata =
        names.length > 0 ? await dc.admin.fetchTopicMetadata({ topics: names }) : { topics: [] };
      const topics = new Map<string, number>();
      for (const t of metadata.topics) topics.set(t.name, t.partitions.length);
      dc.topics = topics;
      if (!dc.reachable) this.logger.info({ datacenter: dc.config.name }, "datacenter reachable again");
      dc.reachable = true;
      dc.failures = 0;
      dc.lastError = undefined;
    } catch (err) {
      dc.failures++;
      const backoff = Math.min(30_000, 500 * 2 ** Math.min(dc.failures, 6));
      dc.nextAttemptAt = Date.now() + backoff;
      if (dc.reachable)
        this.logger.warn({ datacenter: dc.config.name, err: errorText(err) }, "datacenter unreachable");
      dc.reachable = false;
      dc.lastError = errorText(err);
      this.metrics.errors.inc({ kind: "unreachable" });
      if (dc.adminConnected) {
        dc.adminConnected = false;
        await dc.admin.disconnect().catch(() => undefined);
      }
    }
  }

  /** One discovery round: list topics, plan, reconcile pipelines. */
  /** One discovery round at a time; stop() waits for the one in flight. */
  private round(): Promise<void> {
    const current = (this.roundInFlight ??= this.roundOnce().finally(() => {
      this.roundInFlight = undefined;
    }));
    return current;
  }

  private async roundOnce(): Promise<void> {
    const started = Date.now();
    const names = new Set<string>();
    // With registration on, every datacenter may announce applications.
    if (this.config.registry.enabled) this.config.datacenters.forEach((d) => names.add(d.name));
    for (const rule of this.config.replication) {
      if (rule.model === "active-active") rule.datacenters.forEach((d) => names.add(d));
      else rule.sources.forEach((d) => names.add(d));
    }
    // A slow or unreachable datacenter must not hold the others up: wait for each discovery at most
    // about one interval; a discovery still running goes on in the background (its last result is used).
    const pending = [...names].map((n) => {
      const dc = this.dc(n);
      dc.discovery ??= this.discover(dc).finally(() => {
        dc.discovery = undefined;
      });
      return dc.discovery;
    });
    await Promise.race([
      Promise.all(pending),
      sleep(Math.max(1000, this.config.discovery.intervalMs), { unref: true }),
    ]);

    const discovered = new Map<string, Set<string>>();
    for (const n of names) discovered.set(n, new Set(this.dc(n).topics.keys()));
    if (this.config.replicator.leaderElection && !this.election && this.running) void this.startElection();
    const registrations = new Map<string, Map<string, Registration>>();
    if (this.config.registry.enabled) {
      for (const n of names) {
        const dc = this.dc(n);
        if (dc.hasRegistry && !dc.registryReader && dc.reachable) void this.startRegistryReader(dc);
        registrations.set(n, dc.registrations);
      }
    }
    const plan = planPipelines(discovered, this.config, registrations);
    const wanted = new Map(plan.map((p) => [p.id, p]));

    for (const p of plan) {
      const key = `${p.sourceDc}/${p.sourceTopic}`;
      if (!this.discovered.has(key)) {
        this.discovered.add(key);
        this.metrics.discoveries.inc({ datacenter: p.sourceDc });
        this.logger.info({ datacenter: p.sourceDc, topic: p.sourceTopic }, "application discovered");
      }
    }

    // Stop pipelines whose rule or source topic went away, and those whose source grew partitions.
    const stops: Promise<void>[] = [];
    for (const run of this.runs.values()) {
      const next = wanted.get(run.pipeline.id);
      const src = this.dcs.get(run.pipeline.sourceDc);
      const sourceReachable = src?.reachable ?? false;
      if (!next) {
        // Keep a pipeline whose source datacenter is only unreachable: its consumer retries by itself.
        if (sourceReachable || !names.has(run.pipeline.sourceDc))
          stops.push(this.stopPipeline(run, "no longer planned"));
      } else if (JSON.stringify(next) !== JSON.stringify(run.pipeline)) {
        stops.push(this.stopPipeline(run, "rule changed"));
      } else if ((src?.topics.get(run.pipeline.sourceTopic) ?? 0) > run.sourcePartitions) {
        stops.push(this.stopPipeline(run, "source partitions added"));
      } else if (run.state === "failed") {
        stops.push(this.stopPipeline(run, "restart after failure"));
      }
    }
    await Promise.all(stops);

    const starts: Promise<void>[] = [];
    for (const p of plan) {
      if (this.runs.has(p.id)) continue;
      const src = this.dc(p.sourceDc);
      const dst = this.dc(p.destinationDc);
      if (!src.reachable || !dst.reachable) continue;
      starts.push(this.startPipeline(p));
    }
    await Promise.all(starts);
    this.metrics.pipelines.set([...this.runs.values()].filter((r) => r.state === "running").length);
    this.rounds++;
    this.lastRoundAt = Date.now();
    this.lastRoundMs = this.lastRoundAt - started;
  }

  /** Creates the target topic like the source (partitions and key configs), or grows its partitions. */
  private async ensureTarget(
    p: Pipeline,
  ): Promise<{ source: number; target: number; maxMessageBytes: number }> {
    const src = this.dc(p.sourceDc);
    const dst = this.dc(p.destinationDc);
    if (!dst.adminConnected) {
      await dst.admin.connect();
      dst.adminConnected = true;
    }
    const [sourceMeta] = (await src.admin.fetchTopicMetadata({ topics: [p.sourceTopic] })).topics;
    const sourcePartitions = sourceMeta?.partitions.length ?? 0;
    if (sourcePartitions === 0)
      throw new ReplicatorError("SOURCE_GONE", `source topic ${p.sourceTopic} has no partitions`);
    const described = await src.admin.describeConfigs({
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: p.sourceTopic, configNames: [...COPIED_TOPIC_CONFIGS] },
      ],
      includeSynonyms: false,
    });
    const configEntries = (described.resources[0]?.configEntries ?? [])
      .filter((e) => e.configSource === 1 /* TOPIC_CONFIG: set on the topic */)
      .map((e) => ({ name: e.configName, value: e.configValue }));

    let existing = new Set(await dst.admin.listTopics());
    if (!existing.has(p.targetTopic) && !this.isLeader) {
      // The leader (another engine or instance) saw the same topic in the same round and is creating
      // the target now: wait for it briefly rather than a whole discovery interval.
      existing = await this.waitForLeaderTarget(dst, p.targetTopic);
    }
    if (!existing.has(p.targetTopic)) {
      if (!this.isLeader) {
        throw new ReplicatorError(
          "WAITING_FOR_LEADER",
          `target topic ${p.targetTopic} is created by the leader`,
          {
            retriable: true,
          },
        );
      }
      try {
        await dst.admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: p.targetTopic, numPartitions: sourcePartitions, configEntries }],
        });
        this.logger.info(
          { datacenter: p.destinationDc, topic: p.targetTopic, partitions: sourcePartitions, configEntries },
          "target topic created",
        );
      } catch (err) {
        // Another pipeline (merge) or replicator may have created it meanwhile.
        if (!/already exists/i.test(errorText(err))) throw err;
      }
    }
    let [targetMeta] = (await dst.admin.fetchTopicMetadata({ topics: [p.targetTopic] })).topics;
    let targetPartitions = targetMeta?.partitions.length ?? 0;
    if (targetPartitions < sourcePartitions && p.model !== "merge" && !this.isLeader) {
      throw new ReplicatorError(
        "WAITING_FOR_LEADER",
        `target ${p.targetTopic} partitions are added by the leader`,
        {
          retriable: true,
        },
      );
    }
    if (targetPartitions < sourcePartitions && p.model !== "merge") {
      await dst.admin.createPartitions({
        topicPartitions: [{ topic: p.targetTopic, count: sourcePartitions }],
      });
      this.logger.info(
        { topic: p.targetTopic, from: targetPartitions, to: sourcePartitions },
        "target partitions added",
      );
      [targetMeta] = (await dst.admin.fetchTopicMetadata({ topics: [p.targetTopic] })).topics;
      targetPartitions = targetMeta?.partitions.length ?? 0;
    }
    const targetConfig = await dst.admin.describeConfigs({
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: p.targetTopic, configNames: ["max.message.bytes"] },
      ],
      includeSynonyms: false,
    });
    const maxMessageBytes = Number(
      targetConfig.resources[0]?.configEntries.find((e) => e.configName === "max.message.bytes")
        ?.configValue ?? DEFAULT_MAX_MESSAGE_BYTES,
    );
    return { source: sourcePartitions, target: targetPartitions, maxMessageBytes };
  }

  /**
   * Polls the destination's topic list until `topic` exists, for at most two discovery intervals (the
   * leader's rounds are not aligned with this engine's) and at most {@link LEADER_TARGET_WAIT_MS};
   * returns the last list.
   */
  private async waitForLeaderTarget(dst: DcState, topic: string): Promise<Set<string>> {
    const deadline = Date.now() + Math.min(LEADER_TARGET_WAIT_MS, 2 * this.config.discovery.intervalMs);
    let delay = 25;
    for (;;) {
      await sleep(delay, { unref: true });
      const topics = new Set(await dst.admin.listTopics());
      if (topics.has(topic) || Date.now() + delay > deadline || !this.running) return topics;
      delay = Math.min(delay * 2, 200);
    }
  }

  private async startPipeline(p: Pipeline): Promise<void> {
    const groupId = `${OWN_TOPIC_PREFIX}${this.config.replicator.id}.${p.sourceDc}.${p.sourceTopic}.${p.destinationDc}`;
    const run: PipelineRun = {
      pipeline: p,
      policy: policyFor(this.config, p.naming),
      groupId,
      state: "starting",
      sourcePartitions: 0,
      targetPartitions: 0,
      maxBatchBytes: 0,
      partitions: new Map(),
      acked: new Map(),
      committed: new Map(),
      assigned: [],
      records: 0,
      bytes: 0,
      skipped: 0,
      startedAt: Date.now(),
    };
    this.runs.set(p.id, run);
    const log = this.logger.child({ pipeline: p.id });
    try {
      const sizes = await this.ensureTarget(p);
      run.sourcePartitions = sizes.source;
      run.targetPartitions = sizes.target;
      const limit = Math.min(sizes.maxMessageBytes, this.config.replicator.maxRecordBytes ?? Infinity);
      run.maxBatchBytes = limit - BATCH_OVERHEAD;
      const exactlyOnce = this.delivery === "exactly-once";
      const dst = this.dc(p.destinationDc);
      // Exactly-once: source positions live in the destination cluster (group `groupId` there), written in
      // the same transaction as the records (MirrorMaker 2's exactly-once design). Engine k owns the source
      // partitions p with p mod n = k (./assignment.ts) and writes them with its own transactional id
      // `groupId.k`: a restarted pipeline fences the previous producer of the same partitions (same id)
      // and resumes from those positions. The engines' transactions commit positions of disjoint
      // partitions to the same destination group (the coordinator keeps pending offsets per producer).
      const slot = this.engine;
      if (!ownsAnyPartition(slot, sizes.source)) {
        // A topic with fewer partitions than engines, and this engine's index is past them: exactly-once
        // gives it none of them (static split), and at-least-once needs no more members than partitions.
        // Joining the group would only cost a consumer and a rebalance of the members that do the work
        // (a join waits up to a heartbeat interval for every member; round-robin could even move a
        // partition away mid-copy). More source partitions restart the pipeline, which re-checks this.
        if (run.state === "starting") run.state = "running";
        log.info(
          { sourcePartitions: sizes.source, engine: slot.index, engines: slot.count },
          "pipeline idle: the source topic has fewer partitions than this engine's index",
        );
        return;
      }
      const concurrency = this.config.replicator.partitionConcurrency;
      // At-least-once sends go straight to the partition leaders (./direct-producer.ts); exactly-once uses
      // kafkajs's transactional producer. Either way each partition has one send in flight at a time.
      const direct = exactlyOnce
        ? undefined
        : DirectProducer.create(dst.kafka, p.targetTopic, { maxInFlightRequests: DIRECT_REQUESTS_IN_FLIGHT });
      const producer = direct
        ? undefined
        : dst.kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
            retry: exactlyOnce ? TRANSACTIONAL_RETRY : PRODUCER_RETRY,
            ...(exactlyOnce
              ? { transactionalId: `${groupId}.${slot.index}`, transactionTimeout: 30_000 }
              : {}),
          });
      if (!exactlyOnce && !direct)
        log.info("kafkajs cluster factory not found: sending through kafkajs's producer");
      run.producer = producer;
      run.direct = direct;
      if (!exactlyOnce) {
        run.sends = new OrderedSends(ALO_SENDS_PER_PARTITION, (err) => {
          // Later sends of the partition were not made; the pipeline restarts from the committed positions.
          this.metrics.errors.inc({ kind: "replicate" });
          log.warn({ err: errorText(err) }, "records not acknowledged; restarting the pipeline");
          run.state = "failed";
          run.error = errorText(err);
        });
      }
      if (exactlyOnce && producer) {
        run.transactions = new TransactionGroup(producer, groupId, (txn, messages) =>
          viaKafkajs(txn, p.targetTopic)(messages),
        );
      }
      // The destination side (producer, exactly-once positions) and the source side (consumer connection
      // and subscription) are set up at the same time: a new topic's first records arrive sooner.
      const destinationReady = (async () => {
        await (direct ?? producer)?.connect();
        if (exactlyOnce) {
          // Read after connect: the producer's transactional id is initialised, so no earlier producer of
          // these partitions can still commit positions. Only this engine's partitions are kept.
          const committed = await dst.admin.fetchOffsets({ groupId, topics: [p.sourceTopic] });
          run.eosStart = new Map();
          for (const t of committed)
            for (const part of t.partitions)
              if (part.offset !== "-1" && part.offset !== "" && ownsPartition(slot, part.partition))
                run.eosStart.set(part.partition, BigInt(part.offset));
        }
      })();
      const consumer = this.dc(p.sourceDc).kafka.consumer({
        groupId,
        sessionTimeout: this.config.replicator.sessionTimeoutMs,
        rebalanceTimeout: this.config.replicator.sessionTimeoutMs,
        heartbeatInterval: 1000,
        maxWaitTimeInMs: 200,
        // Larger fetches than kafkajs's defaults (1 MiB per partition, 10 MiB in all): fewer fetch rounds,
        // each followed by up to `partitionConcurrency` partitions replicated at once.
        maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
        maxBytes: FETCH_MAX_BYTES,
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
        // Exactly-once: the static split by engine index (./assignment.ts); else kafkajs's round-robin.
        ...(exactlyOnce
          ? {
              partitionAssigners: [
                staticPartitionAssigner(slot, (split) => {
                  if (split.idle.length > 0)
                    log.warn({ idle: split.idle }, "group members left without partitions");
                  if (split.unassigned.length > 0)
                    log.info(
                      { unassigned: split.unassigned, engines: split.count },
                      "partitions unassigned until their engine joins",
                    );
                }),
              ],
            }
          : {}),
      });
      run.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        const before = run.joined ? run.assigned : undefined;
        run.joined = true;
        run.revoking = undefined;
        run.assigned = [...(event.payload.memberAssignment[p.sourceTopic] ?? [])].sort((a, b) => a - b);
        log.info({ assigned: run.assigned }, "partitions assigned");
        if (exactlyOnce) return; // resumes from the destination's positions (eosStart)
        // At-least-once rejoin: the partitions this member kept resume at its acknowledged positions, not
        // at the group's older committed ones (./rejoin.ts).
        const plan = planRejoin(before, run.assigned, run.acked, run.committed);
        for (const { partition, offset } of plan.seeks) {
          consumer.seek({ topic: p.sourceTopic, partition, offset });
          log.info({ partition, offset }, "rejoined: resuming at the acknowledged position");
        }
        for (const partition of plan.forget) {
          run.acked.delete(partition);
          run.committed.delete(partition);
        }
      });
      if (!exactlyOnce) {
        // A rebalance is starting: commit what was acknowledged now, before the group hands the partitions
        // out again (the commit of the current generation is accepted while the group prepares the
        // rebalance), so that a partition moving to another member is not re-read from an older position.
        consumer.on(consumer.events.REBALANCING, () => void this.commitNow(run));
      }
      consumer.on(consumer.events.CRASH, (event) => {
        const restart = (event.payload as { restart?: boolean }).restart;
        this.metrics.errors.inc({ kind: "consumer" });
        log.error({ err: errorText(event.payload.error), restart }, "pipeline consumer crashed");
        if (!restart) {
          run.state = "failed";
          run.error = errorText(event.payload.error);
        }
      });
      const sourceReady = (async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [p.sourceTopic], fromBeginning: true });
      })();
      const [destination, source] = await Promise.allSettled([destinationReady, sourceReady]);
      if (destination.status === "rejected") throw destination.reason;
      if (source.status === "rejected") throw source.reason;
      await consumer.run({
        // At-least-once commits the acknowledged positions itself (commitAcked); exactly-once keeps its
        // positions in the destination. Resolved offsets only move kafkajs's fetch position.
        autoCommit: false,
        partitionsConsumedConcurrently: concurrency,
        eachBatchAutoResolve: false,
        eachBatch: (payload) =>
          this.replicateBatch(run, payload).catch((err: unknown) => {
            this.metrics.errors.inc({ kind: "replicate" });
            log.warn({ err: errorText(err) }, "batch not replicated (not committed; will be retried)");
            if (err instanceof PlatformError && err.code === "NOT_ACKNOWLEDGED") {
              // Restart the pipeline (new producer, fresh metadata) in the next discovery round.
              run.state = "failed";
              run.error = err.message;
            }
            throw err;
          }),
      });
      // Only this engine's partitions (eosStart is filtered); kafkajs applies a seek when the partition is
      // fetched after the group assigned it, and ignores seeks of partitions it does not own.
      for (const [partition, offset] of run.eosStart ?? []) {
        consumer.seek({ topic: p.sourceTopic, partition, offset: offset.toString() });
      }
      if (run.state === "stopping") {
        // Stopped while starting: undo what this start did.
        await consumer.disconnect().catch(() => undefined);
        await (direct ?? producer)?.disconnect().catch(() => undefined);
        return;
      }
      if (run.state === "starting") run.state = "running";
      log.info(
        {
          groupId,
          sourcePartitions: sizes.source,
          targetPartitions: sizes.target,
          maxMessageBytes: sizes.maxMessageBytes,
          ...(exactlyOnce ? { transactionalId: `${groupId}.${slot.index}`, engines: slot.count } : {}),
        },
        "pipeline started",
      );
    } catch (err) {
      if (
        err instanceof ReplicatorError &&
        err.code === "WAITING_FOR_LEADER" &&
        !run.consumer &&
        !run.producer &&
        !run.direct
      ) {
        // Not an error: the leader creates the target; the next round tries again.
        log.debug({ err: errorText(err) }, "pipeline waits for the leader");
        if (this.runs.get(p.id) === run) this.runs.delete(p.id);
        return;
      }
      this.metrics.errors.inc({ kind: "pipeline-start" });
      log.warn({ err: errorText(err) }, "pipeline failed to start; retrying next round");
      run.state = "failed";
      run.error = errorText(err);
    }
  }

  private async stopPipeline(run: PipelineRun, reason: string): Promise<void> {
    if (run.state === "stopping") return;
    run.state = "stopping";
    if (run.sends && run.consumer) {
      // At-least-once: stop fetching, let the sends in flight finish, and commit what was acknowledged, so
      // that the next owner of the partitions re-reads as little as possible.
      try {
        run.consumer.pause([{ topic: run.pipeline.sourceTopic }]);
        await Promise.race([run.sends.drain(), sleep(ALO_STOP_DRAIN_MS, { unref: true })]);
        await this.commitNow(run);
      } catch (err) {
        this.logger.debug({ pipeline: run.pipeline.id, err: errorText(err) }, "final offset commit failed");
      }
    }
    clearTimeout(run.commitTimer);
    try {
      await run.consumer?.disconnect();
      await run.producer?.disconnect();
      await run.direct?.disconnect();
    } catch (err) {
      this.logger.warn({ pipeline: run.pipeline.id, err: errorText(err) }, "pipeline disconnect failed");
    }
    if (this.runs.get(run.pipeline.id) === run) this.runs.delete(run.pipeline.id);
    for (const partition of run.partitions.keys()) {
      this.metrics.lag.remove({ pipeline: run.pipeline.id, partition: String(partition) });
    }
    this.logger.info({ pipeline: run.pipeline.id, reason }, "pipeline stopped");
  }

  /** Copies one fetched batch (one source partition) to the destination, then commits. */
  private async replicateBatch(run: PipelineRun, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const p = run.pipeline;
    const { producer, direct } = run;
    if (!producer && !direct) throw new ReplicatorError("NOT_STARTED", `pipeline ${p.id} has no producer`);
    const targetPartition =
      batch.partition < run.targetPartitions
        ? batch.partition
        : batch.partition % Math.max(1, run.targetPartitions);
    const labels = { source: p.sourceDc, destination: p.destinationDc, topic: p.sourceTopic };

    let i = 0;
    const messages = batch.messages;
    const start = run.eosStart?.get(batch.partition);
    const limits = SLICE_LIMITS[run.transactions ? "exactly-once" : "at-least-once"];
    const sliceBytes = limits.requests * run.maxBatchBytes;
    while (i < messages.length) {
      if (!isRunning() || isStale() || run.revoking) return;
      // One slice (SLICE_LIMITS). Exactly-once: sent and acknowledged, then resolved. At-least-once: queued
      // behind the partition's earlier sends, then resolved: the fetch position moves on, the committed one
      // follows the acknowledgements. A record chunked because it alone exceeds the destination's limit
      // forms a slice of its own (several requests).
      const sliceStart = i;
      let last: KafkaMessage | undefined;
      let replicable = false;
      const out: RecordLike[] = [];
      const sizes: number[] = [];
      let outBytes = 0;
      let bytes = 0;
      const timestamps: number[] = [];
      while (i < messages.length && i - sliceStart < limits.records) {
        const m = messages[i]!;
        // Exactly-once: records below the position committed in the destination were already replicated.
        if (start !== undefined && BigInt(m.offset) < start) {
          last = m;
          i++;
          continue;
        }
        const headers = m.headers as Headers | undefined;
        const decision = decideRecord(p, run.policy, headers);
        if (decision !== "send") {
          run.skipped++;
          this.metrics.skipped.inc({ ...labels, reason: decision });
          replicable = true;
          last = m;
          i++;
          continue;
        }
        const record: RecordLike = {
          key: m.key,
          value: m.value,
          headers: withProvenance(headers, {
            dc: p.sourceDc,
            topic: p.sourceTopic,
            partition: batch.partition,
            offset: m.offset,
          }),
          timestamp: m.timestamp,
          partition: targetPartition,
        };
        const parts = splitRecordSized(record, run.maxBatchBytes);
        let partsBytes = 0;
        for (const part of parts) partsBytes += part.size;
        if (out.length > 0 && outBytes + partsBytes > sliceBytes) break; // the next slice's first
        if (parts.length > 1) this.metrics.chunked.inc({ destination: p.destinationDc });
        for (const part of parts) {
          out.push(part.record);
          sizes.push(part.size);
        }
        outBytes += partsBytes;
        bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
        timestamps.push(Number(m.timestamp));
        replicable = true;
        last = m;
        i++;
      }
      if (!last) break;
      if (!replicable) {
        // Only records replicated before (exactly-once resume): nothing to send or commit.
        resolveOffset(last.offset);
        continue;
      }
      const next = (BigInt(last.offset) + 1n).toString();
      const position = { topic: batch.topic, partition: batch.partition, offset: next };
      if (run.transactions) {
        // Exactly-once: this slice's records and its source position, in the transaction it shares with
        // the slices of other partitions replicated at the same time (./transactions.ts).
        await run.transactions.run(position, toRequests(out, sizes, run.maxBatchBytes));
        run.eosStart?.set(batch.partition, BigInt(next));
        // Best effort, for monitoring and shorter re-reads; the destination holds the authoritative position.
        // Coalesced, at most one commit a second: a commit per slice queued on the connection the fetches use.
        run.acked.set(batch.partition, next);
        this.scheduleCommit(run, EOS_SOURCE_COMMIT_MS);
        this.acknowledged(run, batch.partition, last.offset, next, timestamps, bytes);
      } else {
        // At-least-once: queued behind the partition's earlier sends; the fetch loop goes on meanwhile.
        const deliver = direct
          ? (chunk: Message[]) => direct.send(targetPartition, chunk)
          : viaKafkajs(producer!, p.targetTopic);
        const requests = toRequests(out, sizes, run.maxBatchBytes);
        const lastOffset = last.offset;
        await run.sends!.enqueue(
          batch.partition,
          async () => {
            for (const request of requests) await deliver(request);
          },
          () => {
            this.acknowledged(run, batch.partition, lastOffset, next, timestamps, bytes);
            // A send of a partition this member lost in a rebalance: its new owner has taken over the
            // position, and committing this one later could move it back.
            if (!run.assigned.includes(batch.partition)) return;
            run.acked.set(batch.partition, next);
            this.scheduleCommit(run);
          },
        );
      }
      resolveOffset(last.offset);
      try {
        await heartbeat();
      } catch (err) {
        if (run.sends && protocolErrorCode(err) === REBALANCE_IN_PROGRESS) await this.beforeRejoin(run);
        throw err;
      }
    }
  }

  /**
   * At-least-once, a rebalance seen by this batch's heartbeat: start no new slice, let the sends in flight
   * finish (at most ALO_REBALANCE_DRAIN_MS) and commit what was acknowledged, then let kafkajs rejoin. The
   * group accepts the current generation's commit while it prepares the rebalance, so a partition that
   * moves to another member resumes after every record this one copied (as the Java consumer's commit in
   * `onPartitionsRevoked`). The batches replicated at the same time share one wait.
   */
  private beforeRejoin(run: PipelineRun): Promise<void> {
    run.revoking ??= (async () => {
      this.logger.info(
        { pipeline: run.pipeline.id, inFlight: run.sends?.pending ?? 0 },
        "rebalance: finishing the sends in flight and committing before rejoining",
      );
      await Promise.race([run.sends?.drain(), sleep(ALO_REBALANCE_DRAIN_MS, { unref: true })]);
      await this.commitNow(run);
    })();
    return run.revoking;
  }

  /** Commits the acknowledged positions now, instead of at the scheduled time. Never rejects. */
  private commitNow(run: PipelineRun): Promise<void> {
    clearTimeout(run.commitTimer);
    run.commitTimer = undefined;
    return this.commitAcked(run);
  }

  /** Bookkeeping of a slice the destination acknowledged: metrics, status and lag. */
  private acknowledged(
    run: PipelineRun,
    partition: number,
    lastOffset: string,
    next: string,
    timestamps: readonly number[],
    bytes: number,
  ): void {
    const p = run.pipeline;
    const labels = { source: p.sourceDc, destination: p.destinationDc, topic: p.sourceTopic };
    const ackAt = Date.now();
    const latency = this.metrics.latency.labels({ destination: p.destinationDc });
    for (const ts of timestamps) latency.observe((ackAt - ts) / 1000);
    run.records += timestamps.length;
    run.bytes += bytes;
    this.metrics.records.inc(labels, timestamps.length);
    this.metrics.bytes.inc(labels, bytes);
    const progress = run.partitions.get(partition) ?? { lastOffset: "-1", committed: "0", records: 0 };
    progress.lastOffset = lastOffset;
    progress.committed = next;
    progress.records += timestamps.length;
    run.partitions.set(partition, progress);
  }

  /**
   * Commits the acknowledged positions after `delayMs`, or after the commit in flight (one at a time).
   * At-least-once: the positions that count; exactly-once: the source group's best-effort copy.
   */
  private scheduleCommit(run: PipelineRun, delayMs = this.config.replicator.commitIntervalMs): void {
    if (run.state === "stopping") return;
    if (run.committing) {
      run.commitAgain = true;
      return;
    }
    if (run.commitTimer) return;
    run.commitTimer = setTimeout(() => {
      run.commitTimer = undefined;
      void this.commitAcked(run);
    }, delayMs);
  }

  /**
   * Commits every acknowledged position not committed yet to the source group. A failed
   * commit (e.g. during a rebalance) is tried again later; committing an old owner's acknowledged position
   * never skips a record, it can only cause re-reads. Never rejects.
   */
  private async commitAcked(run: PipelineRun): Promise<void> {
    while (run.committing) await run.committing;
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    for (const [partition, offset] of run.acked) {
      if (run.committed.get(partition) !== offset)
        offsets.push({ topic: run.pipeline.sourceTopic, partition, offset });
    }
    const consumer = run.consumer;
    if (offsets.length === 0 || !consumer) return;
    run.commitAgain = false;
    run.committing = (async () => {
      let failed = false;
      try {
        await consumer.commitOffsets(offsets);
        for (const o of offsets) run.committed.set(o.partition, o.offset);
      } catch (err) {
        failed = true;
        this.metrics.errors.inc({ kind: "commit" });
        this.logger.debug(
          { pipeline: run.pipeline.id, err: errorText(err) },
          "offset commit failed; retrying",
        );
      } finally {
        run.committing = undefined;
      }
      if (failed) this.scheduleCommit(run, ALO_COMMIT_RETRY_MS);
      else if (run.commitAgain) this.scheduleCommit(run);
    })();
    await run.committing;
  }

  /** Per-partition lag = source high watermark − next offset to replicate; updates the lag gauge. */
  private async refreshLag(): Promise<Map<string, Map<number, number>>> {
    const result = new Map<string, Map<number, number>>();
    const bySource = new Map<string, PipelineRun[]>();
    for (const run of this.runs.values()) {
      const key = `${run.pipeline.sourceDc}\u0000${run.pipeline.sourceTopic}`;
      bySource.set(key, [...(bySource.get(key) ?? []), run]);
    }
    await Promise.all(
      [...bySource.values()].map(async (runs) => {
        const first = runs[0];
        if (!first) return;
        const dc = this.dcs.get(first.pipeline.sourceDc);
        if (!dc?.adminConnected || !dc.reachable) return;
        const offsets = await dc.admin.fetchTopicOffsets(first.pipeline.sourceTopic);
        for (const run of runs) {
          const lags = new Map<number, number>();
          for (const o of offsets) {
            const committed = run.partitions.get(o.partition)?.committed ?? o.low;
            const lag = Math.max(0, Number(BigInt(o.high) - BigInt(committed)));
            lags.set(o.partition, lag);
            this.metrics.lag.set({ pipeline: run.pipeline.id, partition: String(o.partition) }, lag);
          }
          result.set(run.pipeline.id, lags);
        }
      }),
    );
    return result;
  }

  /** The Prometheus exposition of this engine's registry. */
  async metricsText(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.metrics.registry.contentType, text: await this.metrics.registry.metrics() };
  }

  /** Whether every datacenter the replicator uses answered its last discovery. */
  health(): Health {
    const datacenters = [...this.dcs.values()].map((dc) => ({
      name: dc.config.name,
      reachable: dc.reachable,
      ...(dc.lastError !== undefined ? { error: dc.lastError } : {}),
    }));
    return { ok: this.running && datacenters.every((d) => d.reachable), datacenters };
  }

  async status(options: { lag?: boolean } = {}): Promise<ReplicatorStatus> {
    const lags = options.lag
      ? await this.refreshLag().catch(() => new Map<string, Map<number, number>>())
      : new Map();
    const applications: ReplicatorStatus["applications"] = [];
    const planned = new Set(
      [...this.runs.values()].map((r) => `${r.pipeline.sourceDc}\u0000${r.pipeline.sourceTopic}`),
    );
    for (const dc of this.dcs.values()) {
      for (const [topic, partitions] of dc.topics) {
        if (planned.has(`${dc.config.name}\u0000${topic}`))
          applications.push({ datacenter: dc.config.name, topic, partitions });
      }
    }
    return {
      id: this.config.replicator.id,
      running: this.running,
      leader: this.isLeader,
      discovery: {
        intervalMs: this.config.discovery.intervalMs,
        rounds: this.rounds,
        ...(this.lastRoundAt !== undefined ? { lastRoundAt: new Date(this.lastRoundAt).toISOString() } : {}),
        ...(this.lastRoundMs !== undefined ? { lastRoundMs: this.lastRoundMs } : {}),
      },
      datacenters: [...this.dcs.values()].map((dc) => ({
        name: dc.config.name,
        reachable: dc.reachable,
        ...(dc.lastError !== undefined ? { error: dc.lastError } : {}),
        topics: dc.topics.size,
      })),
      applications,
      pipelines: [...this.runs.values()].map((run) => {
        const p = run.pipeline;
        const lag = lags.get(p.id) as Map<number, number> | undefined;
        const partitions = [...new Set([...run.partitions.keys(), ...(lag?.keys() ?? [])])].sort(
          (a, b) => a - b,
        );
        return {
          id: p.id,
          model: p.model,
          ...(p.group !== undefined ? { group: p.group } : {}),
          source: { datacenter: p.sourceDc, topic: p.sourceTopic, partitions: run.sourcePartitions },
          destination: {
            datacenter: p.destinationDc,
            topic: p.targetTopic,
            partitions: run.targetPartitions,
          },
          state: run.state,
          ...(run.error !== undefined ? { error: run.error } : {}),
          records: run.records,
          bytes: run.bytes,
          skipped: run.skipped,
          assigned: run.assigned,
          partitions: partitions.map((partition) => {
            const progress = run.partitions.get(partition);
            const l = lag?.get(partition);
            return {
              partition,
              lastReplicatedOffset: progress?.lastOffset ?? "-1",
              committedOffset: progress?.committed ?? "0",
              ...(l !== undefined ? { lag: l } : {}),
            };
          }),
        };
      }),
    };
  }

  /** Test and tooling helper: resolves when the pipeline with this id is running. */
  async waitForPipeline(id: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.runs.get(id)?.state === "running") return;
      await sleep(100, { unref: true });
    }
    throw new ReplicatorError("TIMEOUT", `pipeline ${id} not running after ${timeoutMs} ms`);
  }
}
