/**
 * At-least-once sends straight to the partition leader, without kafkajs's producer layer.
 *
 * The engine already decides the target partition of every record and keeps one send in flight per
 * partition, so kafkajs's producer adds only cost here: it groups messages per partition in quadratic
 * time (`groupMessagesPerPartition` copies the array for every message), runs the partitioner per message,
 * and its idempotent mode allows one request per broker at a time. This sender uses the same kafkajs
 * cluster (connections, SSL/SASL, metadata) that `kafka.producer()` would build, and sends one produce
 * request (acks=all) to each partition leader; while requests are in flight, the sends of other
 * partitions queue and go out together in the next request (as Kafka's own producer batches).
 *
 * Each partition of a request settles on its own (../patches/produce-results.ts): acknowledged, refused
 * for good (`RECORDS_REFUSED`: a non-retriable error such as MESSAGE_TOO_LARGE), or, for errors kafkajs
 * marks retriable (leader moved, connection lost, timeouts), retried alone with jittered exponential
 * backoff after a metadata refresh until the retries run out (`NOT_ACKNOWLEDGED`). A partition that was
 * acknowledged is never sent again because another partition of its request failed.
 */
import type { Kafka, Message } from "kafkajs";
import { sleep } from "../common/time.js";
import { createRequire } from "node:module";
import { KafkaError } from "./errors.js";
import { ProduceMerger, type MergedAnswer, type TopicData } from "./produce-merge.js";
import { partitionResultsActive, withPartitionResults } from "./patches/produce-results.js";
import { protocolErrorCode } from "./protocol.js";
import { clusterFactory, type KafkajsCluster } from "./cluster.js";

const require = createRequire(import.meta.url);

interface ProducePartitionResponse {
  partition: number;
  errorCode: number;
}
interface ProduceResponse {
  topics?: { topicName: string; partitions: ProducePartitionResponse[] }[];
}

export interface DirectProducerOptions {
  /** Produce requests in flight at once; sends that arrive meanwhile are merged into the next request. */
  maxInFlightRequests: number;
  /** A merged request stops growing at this many bytes of records (the broker accepts 100 MiB by default). */
  maxRequestBytes?: number;
  /** Broker-side wait for acks=all (ms). */
  ackTimeoutMs?: number;
  retries?: number;
  initialRetryMs?: number;
  maxRetryMs?: number;
}

interface PendingSend {
  partition: number;
  messages: Message[];
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function isRetriable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retriable?: unknown }).retriable === true;
}

const SENDER_DEFAULTS = {
  maxRequestBytes: 16 * 1024 * 1024,
  ackTimeoutMs: 30_000,
  retries: 10,
  initialRetryMs: 300,
  maxRetryMs: 5_000,
};

/**
 * One kafkajs cluster (connections, SSL/SASL, metadata) shared by the senders of many target topics of
 * one destination: the connections do not grow with the topics. The cluster connects on the first
 * sender's `connect` and disconnects when the last one disconnects; each sender adds its topic to the
 * cluster's metadata. Requests in flight are limited per sender (`maxInFlightRequests`), not per
 * connection: the broker answers one connection's requests in order anyway.
 */
export class DirectCluster {
  private users = 0;
  private connecting?: Promise<void>;
  /** Topics of senders connecting now, added to the metadata together (see `addTopic`). */
  private readonly queued = new Set<string>();
  private adding?: Promise<void>;
  private nextAdd?: Promise<void>;

  /** The senders' requests to one broker in one turn of the event loop go as one (./produce-merge.ts). */
  private readonly merger: ProduceMerger<ProduceResponse>;

  private constructor(private readonly cluster: KafkajsCluster) {
    this.merger = new ProduceMerger(
      (nodeId, topicData, timeout) => produceRequest(cluster, nodeId, topicData, timeout),
      SENDER_DEFAULTS.maxRequestBytes,
    );
  }

  /** Undefined when kafkajs's internals are off limits (as `DirectProducer.create`). */
  static create(kafka: Kafka, env: NodeJS.ProcessEnv = process.env): DirectCluster | undefined {
    const factory = clusterFactory(kafka, env);
    if (!factory) return undefined;
    return new DirectCluster(factory({ allowAutoTopicCreation: false, maxInFlightRequests: null }));
  }

  /** A sender for `topic` on this cluster. */
  producer(topic: string, options: DirectProducerOptions): DirectProducer {
    return new DirectProducer(this.sharedCluster(), topic, { ...SENDER_DEFAULTS, ...options }, this.merger);
  }

  /**
   * Adds a sender's topic to the cluster's metadata. kafkajs refreshes the metadata of every target topic
   * for each new one, one at a time: 1,000 senders connecting made 1,000 refreshes of up to 1,000
   * topics. Topics queued while a refresh runs go together in the next one.
   */
  private addTopic(topic: string): Promise<void> {
    this.queued.add(topic);
    this.nextAdd ??= (async () => {
      await this.adding?.catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve)); // the senders connecting in this turn join
      const topics = [...this.queued];
      this.queued.clear();
      this.nextAdd = undefined;
      this.adding = this.cluster.addMultipleTargetTopics(topics);
      await this.adding;
    })();
    return this.nextAdd;
  }

  /** The cluster as one sender sees it: connect and disconnect are counted, topics added in batches. */
  private sharedCluster(): KafkajsCluster {
    const { cluster } = this;
    let connected = false;
    return {
      ...bindAll(cluster),
      addTargetTopic: (topic) => this.addTopic(topic),
      connect: async () => {
        if (!connected) {
          connected = true;
          this.users++;
        }
        this.connecting ??= cluster.connect().catch((err: unknown) => {
          this.connecting = undefined;
          throw err;
        });
        await this.connecting;
      },
      disconnect: async () => {
        if (!connected) return;
        connected = false;
        if (--this.users > 0) return;
        this.connecting = undefined;
        await cluster.disconnect();
      },
    };
  }
}

/** The cluster's methods bound to it (the shared view overrides connect and disconnect only). */
function bindAll(cluster: KafkajsCluster): KafkajsCluster {
  return {
    connect: () => cluster.connect(),
    disconnect: () => cluster.disconnect(),
    addTargetTopic: (topic) => cluster.addTargetTopic(topic),
    addMultipleTargetTopics: (topics) => cluster.addMultipleTargetTopics(topics),
    refreshMetadata: () => cluster.refreshMetadata(),
    refreshMetadataIfNecessary: () => cluster.refreshMetadataIfNecessary(),
    findLeaderForPartitions: (topic, partitions) => cluster.findLeaderForPartitions(topic, partitions),
    findBroker: (args) => cluster.findBroker(args),
    metadata: (args) => cluster.metadata(args),
  };
}

export class DirectProducer {
  /** Use `create` or `DirectCluster.producer`. */
  constructor(
    private readonly cluster: KafkajsCluster,
    private readonly topic: string,
    private readonly options: Required<DirectProducerOptions>,
    /** The senders of a DirectCluster merge their requests to one broker (./produce-merge.ts). */
    private readonly merger?: ProduceMerger<ProduceResponse>,
  ) {}

  /**
   * A sender for one target topic, or undefined when kafkajs's internals are off limits (another kafkajs
   * version, `LP_KAFKAJS_PATCHES=off`) or it does not expose its cluster factory: the caller then uses
   * kafkajs's own producer.
   */
  static create(
    kafka: Kafka,
    topic: string,
    options: DirectProducerOptions,
    env: NodeJS.ProcessEnv = process.env,
  ): DirectProducer | undefined {
    const factory = clusterFactory(kafka, env);
    if (!factory) return undefined;
    const cluster = factory({
      allowAutoTopicCreation: false,
      maxInFlightRequests: options.maxInFlightRequests,
    });
    return new DirectProducer(cluster, topic, { ...SENDER_DEFAULTS, ...options });
  }

  async connect(): Promise<void> {
    await this.cluster.connect();
    await this.cluster.addTargetTopic(this.topic);
  }

  async disconnect(): Promise<void> {
    await this.cluster.disconnect();
  }

  /**
   * Sends records (in order, one record batch) to one partition; resolves once all replicas have them.
   * The caller keeps one send per partition in flight. Sends of several partitions that wait while
   * `maxInFlightRequests` requests are out go together in the next request (one record batch each).
   */
  send(partition: number, messages: Message[]): Promise<void> {
    let bytes = 0;
    for (const m of messages) bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ partition, messages, bytes, resolve, reject });
      this.pump();
    });
  }

  private readonly pending: PendingSend[] = [];
  private inFlight = 0;

  private pump(): void {
    while (this.inFlight < this.options.maxInFlightRequests && this.pending.length > 0) {
      const group: PendingSend[] = [];
      const partitions = new Set<number>();
      let bytes = 0;
      for (let i = 0; i < this.pending.length;) {
        const next = this.pending[i]!;
        const fits = group.length === 0 || bytes + next.bytes <= this.options.maxRequestBytes;
        if (!fits) break;
        if (partitions.has(next.partition)) {
          i++;
          continue;
        }
        this.pending.splice(i, 1);
        group.push(next);
        partitions.add(next.partition);
        bytes += next.bytes;
      }
      this.inFlight++;
      void this.sendGroup(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async sendGroup(group: PendingSend[]): Promise<void> {
    try {
      await this.produceWithRetries(group);
    } catch (err) {
      for (const p of group) p.reject(err); // a bug of this class: settle every send anyway
    }
  }

  /**
   * Sends the group's partitions until each is acknowledged, refused for good, or out of retries. Each
   * partition settles on its own: a partition acknowledged is never sent again because another failed.
   */
  private async produceWithRetries(group: PendingSend[]): Promise<void> {
    let open = group;
    /** Send every partition in a request of its own (the shared request failed as a whole). */
    let alone = false;
    for (let attempt = 0; open.length > 0; attempt++) {
      const outcomes = new Map<PendingSend, Outcome>();
      try {
        await this.cluster.refreshMetadataIfNecessary();
        const byLeader = this.cluster.findLeaderForPartitions(
          this.topic,
          open.map((p) => p.partition),
        );
        const led = new Set(Object.values(byLeader).flat());
        for (const p of open) {
          if (!led.has(p.partition)) {
            const error = new KafkaError(
              "NOT_ACKNOWLEDGED",
              `${this.topic}[${p.partition}]: no leader in the metadata`,
            );
            outcomes.set(p, { error, retriable: true });
          }
        }
        const requests = Object.entries(byLeader).flatMap(([nodeId, ids]) => {
          const wanted = open.filter((p) => ids.includes(p.partition));
          return alone ? wanted.map((p) => ({ nodeId, wanted: [p] })) : [{ nodeId, wanted }];
        });
        await Promise.all(
          requests.map(async ({ nodeId, wanted }) => {
            for (const [p, outcome] of await this.produceTo(nodeId, wanted, alone)) outcomes.set(p, outcome);
          }),
        );
      } catch (err) {
        // Metadata could not be had: every partition not settled yet is retried.
        for (const p of open)
          if (!outcomes.has(p)) outcomes.set(p, { error: err, retriable: isRetriable(err) });
      }
      const retry: PendingSend[] = [];
      let last: unknown;
      alone = false;
      for (const p of open) {
        const outcome = outcomes.get(p) ?? { error: new Error("no outcome"), retriable: true };
        if (outcome === "acked") p.resolve();
        else if (outcome === "ambiguous") {
          retry.push(p);
          alone = true;
        } else if (!outcome.retriable) p.reject(refused(this.topic, p.partition, outcome.error));
        else if (attempt >= this.options.retries)
          p.reject(notAcknowledged(this.topic, p.partition, outcome.error));
        else {
          retry.push(p);
          last = outcome.error;
        }
      }
      open = retry;
      if (open.length === 0) return;
      if (alone && last === undefined) continue; // sent again at once, each alone
      // A retry sends only the partitions not acknowledged yet: at-least-once, a duplicate only of those.
      const base = Math.min(this.options.maxRetryMs, this.options.initialRetryMs * 2 ** attempt);
      await this.cluster.refreshMetadata().catch(() => undefined);
      await sleep(base / 2 + Math.random() * (base / 2), { unref: true });
    }
  }

  /**
   * One produce request to one leader, merged with other senders' of the same cluster unless `alone`
   * (./produce-merge.ts): each partition's outcome.
   */
  private async produceTo(
    nodeId: string,
    wanted: PendingSend[],
    alone: boolean,
  ): Promise<Map<PendingSend, Outcome>> {
    const { topic } = this;
    const outcomes = new Map<PendingSend, Outcome>();
    const topicData = [
      {
        topic,
        partitions: wanted.map((p) => ({ partition: p.partition, firstSequence: 0, messages: p.messages })),
      },
    ];
    let answer: MergedAnswer<ProduceResponse>;
    if (this.merger && !alone) {
      const bytes = wanted.reduce((n, p) => n + p.bytes, 0);
      answer = await this.merger.produce(nodeId, this.options.ackTimeoutMs, { topicData, bytes });
    } else {
      try {
        answer = {
          response: await produceRequest(this.cluster, nodeId, topicData, this.options.ackTimeoutMs),
          partitions: wanted.length,
        };
      } catch (error) {
        answer = { error, partitions: wanted.length };
      }
    }
    if ("error" in answer) {
      // The request failed as a whole. With several partitions in it (this sender's or merged ones), a
      // refusal (kafkajs's parse throws the first partition's error; an encoding error) names none of
      // them: each is sent again alone.
      const err = answer.error;
      const ambiguous = answer.partitions > 1 && (!isRetriable(err) || protocolErrorCode(err) !== undefined);
      for (const p of wanted)
        outcomes.set(p, ambiguous ? "ambiguous" : { error: err, retriable: isRetriable(err) });
      return outcomes;
    }
    for (const p of wanted) {
      const result = answer.response.topics
        ?.find((t) => t.topicName === topic)
        ?.partitions.find((r) => r.partition === p.partition);
      if (result?.errorCode === 0) outcomes.set(p, "acked");
      else if (result === undefined) {
        const error = new KafkaError("NOT_ACKNOWLEDGED", `${topic}[${p.partition}]: not in the response`);
        outcomes.set(p, { error, retriable: true });
      } else {
        const error = protocolError(result.errorCode);
        outcomes.set(p, { error, retriable: isRetriable(error) });
      }
    }
    return outcomes;
  }
}

/** One produce request (acks=all) to a broker, every partition's result asked for where the patch is on. */
async function produceRequest(
  cluster: KafkajsCluster,
  nodeId: string,
  topicData: TopicData[],
  timeout: number,
): Promise<ProduceResponse> {
  const broker = await cluster.findBroker({ nodeId });
  return (await broker.produce({
    acks: -1,
    timeout,
    compression: 0,
    topicData: partitionResultsActive() ? withPartitionResults(topicData) : topicData,
  })) as ProduceResponse;
}

/** A partition's outcome of one attempt. */
type Outcome = "acked" | "ambiguous" | { error: unknown; retriable: boolean };

/** kafkajs's error for a Kafka error code (type, message, retriable), as its own parse would throw it. */
function protocolError(code: number): Error {
  const { createErrorFromCode } = require("kafkajs/src/protocol/error.js") as {
    createErrorFromCode: (code: number) => Error;
  };
  return createErrorFromCode(code);
}

function describe(error: unknown): string {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === "string" ? type : error instanceof Error ? error.message : String(error);
}

function refused(topic: string, partition: number, cause: unknown): KafkaError {
  return new KafkaError(
    "RECORDS_REFUSED",
    `${topic}[${partition}]: refused by the destination (${describe(cause)})`,
    {
      cause,
    },
  );
}

function notAcknowledged(topic: string, partition: number, cause: unknown): KafkaError {
  return new KafkaError(
    "NOT_ACKNOWLEDGED",
    `${topic}[${partition}]: not acknowledged after every retry (${describe(cause)})`,
    {
      cause,
    },
  );
}
