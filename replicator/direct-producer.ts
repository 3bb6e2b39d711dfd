/**
 * At-least-once sends straight to the partition leader, without kafkajs's producer layer.
 *
 * The engine already decides the target partition of every record and keeps one send in flight per
 * partition, so kafkajs's producer adds only cost here: it groups messages per partition in quadratic
 * time (`groupMessagesPerPartition` copies the array for every message), runs the partitioner per message,
 * and its idempotent mode allows one request per broker at a time. This sender uses the same kafkajs
 * cluster (connections, SSL/SASL, metadata) that `kafka.producer()` would build, and sends one produce
 * request (acks=all) per call, to the leader of the one partition.
 *
 * Errors kafkajs marks retriable (leader moved, connection lost, timeouts) are retried with jittered
 * exponential backoff after a metadata refresh; anything else, or too many attempts, rejects — the caller
 * then does not resolve the source offsets and the records are read and sent again (at-least-once).
 */
import type { Kafka, Message } from "kafkajs";
import { ReplicatorError } from "./errors.js";

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
  /** Requests in flight per broker connection (one per partition at a time is the caller's rule). */
  maxInFlightRequests: number;
  /** Broker-side wait for acks=all (ms). */
  ackTimeoutMs?: number;
  retries?: number;
  initialRetryMs?: number;
  maxRetryMs?: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
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

  /** A sender for one target topic, or undefined when kafkajs does not expose its cluster factory. */
  static create(kafka: Kafka, topic: string, options: DirectProducerOptions): DirectProducer | undefined {
    const factory = clusterFactory(kafka);
    if (!factory) return undefined;
    const cluster = factory({
      allowAutoTopicCreation: false,
      maxInFlightRequests: options.maxInFlightRequests,
    });
    return new DirectProducer(cluster, topic, {
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

  /** Sends records (in order, one record batch) to one partition; resolves once all replicas have them. */
  async send(partition: number, messages: Message[]): Promise<void> {
    const { topic } = this;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.cluster.refreshMetadataIfNecessary();
        const nodeId = Object.keys(this.cluster.findLeaderForPartitions(topic, [partition]))[0];
        if (nodeId === undefined) {
          throw new ReplicatorError("NOT_ACKNOWLEDGED", `${topic}[${partition}]: no leader in the metadata`, {
            retriable: true,
          });
        }
        const broker = await this.cluster.findBroker({ nodeId });
        const response = await broker.produce({
          acks: -1,
          timeout: this.options.ackTimeoutMs,
          compression: 0,
          topicData: [{ topic, partitions: [{ partition, firstSequence: 0, messages }] }],
        });
        const acked = response.topics?.some(
          (t) =>
            t.topicName === topic && t.partitions.some((p) => p.partition === partition && p.errorCode === 0),
        );
        if (!acked) {
          throw new ReplicatorError("NOT_ACKNOWLEDGED", `${topic}[${partition}]: no acknowledgement`, {
            retriable: true,
          });
        }
        return;
      } catch (err) {
        if (!isRetriable(err) || attempt >= this.options.retries) throw err;
        const base = Math.min(this.options.maxRetryMs, this.options.initialRetryMs * 2 ** attempt);
        await this.cluster.refreshMetadata().catch(() => undefined);
        await sleep(base / 2 + Math.random() * (base / 2));
      }
    }
  }
}
