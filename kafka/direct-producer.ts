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
 * Errors kafkajs marks retriable (leader moved, connection lost, timeouts) are retried with jittered
 * exponential backoff after a metadata refresh; anything else, or too many attempts, rejects — the caller
 * then does not resolve the source offsets and the records are read and sent again (at-least-once).
 */
import type { Kafka, Message } from "kafkajs";
import { sleep } from "../common/time.js";
import { KafkaError } from "./errors.js";
import { patchesRefused } from "./version.js";

interface ProducePartitionResponse {
  partition: number;
  errorCode: number;
}
interface ProduceResponse {
  topics?: { topicName: string; partitions: ProducePartitionResponse[] }[];
}
interface KafkajsBroker {
  produce(args: {
    acks: number;
    timeout: number;
    compression: number;
    topicData: {
      topic: string;
      partitions: { partition: number; firstSequence: number; messages: Message[] }[];
    }[];
  }): Promise<ProduceResponse>;
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<KafkajsBroker>;
}
type CreateCluster = (options: {
  metadataMaxAge?: number;
  allowAutoTopicCreation?: boolean;
  maxInFlightRequests?: number | null;
}) => KafkajsCluster;

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

/** kafkajs's own cluster factory of this client, or undefined when this kafkajs does not have one. */
function clusterFactory(kafka: Kafka): CreateCluster | undefined {
  const symbol = Object.getOwnPropertySymbols(kafka).find(
    (s) => s.description === "private:Kafka:createCluster",
  );
  const factory = symbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[symbol];
  return typeof factory === "function" ? (factory as CreateCluster) : undefined;
}

function isRetriable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { retriable?: unknown }).retriable === true;
}

export class DirectProducer {
  private constructor(
    private readonly cluster: KafkajsCluster,
    private readonly topic: string,
    private readonly options: Required<DirectProducerOptions>,
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
    if (patchesRefused(env) !== undefined) return undefined;
    const factory = clusterFactory(kafka);
    if (!factory) return undefined;
    const cluster = factory({
      allowAutoTopicCreation: false,
      maxInFlightRequests: options.maxInFlightRequests,
    });
    return new DirectProducer(cluster, topic, {
      maxRequestBytes: 16 * 1024 * 1024,
      ackTimeoutMs: 30_000,
      retries: 10,
      initialRetryMs: 300,
      maxRetryMs: 5_000,
      ...options,
    });
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
      for (const p of group) p.resolve();
    } catch (err) {
      for (const p of group) p.reject(err);
    }
  }

  private async produceWithRetries(group: PendingSend[]): Promise<void> {
    const { topic } = this;
    const partitions = group.map((p) => p.partition);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.cluster.refreshMetadataIfNecessary();
        const byLeader = this.cluster.findLeaderForPartitions(topic, partitions);
        const led = new Set(Object.values(byLeader).flat());
        const missing = partitions.filter((p) => !led.has(p));
        if (missing.length > 0) {
          throw new KafkaError(
            "NOT_ACKNOWLEDGED",
            `${topic}${JSON.stringify(missing)}: no leader in the metadata`,
          );
        }
        await Promise.all(
          Object.entries(byLeader).map(async ([nodeId, ids]) => {
            const broker = await this.cluster.findBroker({ nodeId });
            const wanted = group.filter((p) => ids.includes(p.partition));
            const response = await broker.produce({
              acks: -1,
              timeout: this.options.ackTimeoutMs,
              compression: 0,
              topicData: [
                {
                  topic,
                  partitions: wanted.map((p) => ({
                    partition: p.partition,
                    firstSequence: 0,
                    messages: p.messages,
                  })),
                },
              ],
            });
            for (const p of wanted) {
              const acked = response.topics?.some(
                (t) =>
                  t.topicName === topic &&
                  t.partitions.some((r) => r.partition === p.partition && r.errorCode === 0),
              );
              if (!acked) {
                throw new KafkaError("NOT_ACKNOWLEDGED", `${topic}[${p.partition}]: no acknowledgement`);
              }
            }
          }),
        );
        return;
      } catch (err) {
        // A retry re-sends every partition of the request: at-least-once, so a duplicate is acceptable.
        if (!isRetriable(err) || attempt >= this.options.retries) throw err;
        const base = Math.min(this.options.maxRetryMs, this.options.initialRetryMs * 2 ** attempt);
        await this.cluster.refreshMetadata().catch(() => undefined);
        await sleep(base / 2 + Math.random() * (base / 2), { unref: true });
      }
    }
  }
}
