/**
 * The kafkajs clients of one pipeline: its destination sender (straight to the partition leaders for
 * at-least-once, kafkajs's transactional producer for exactly-once) and its source consumer.
 */
import kafkajs, { type Consumer, type Kafka, type Message, type Producer } from "kafkajs";
import type { Logger } from "pino";
import { staticPartitionAssigner, type EngineSlot } from "../assignment.js";
import { DirectCluster, type DirectProducer } from "../../kafka/direct-producer.js";
import { KafkaError } from "../../kafka/errors.js";
import {
  DIRECT_MAX_RETRY_MS,
  DIRECT_REQUESTS_IN_FLIGHT,
  FETCH_MAX_BYTES,
  FETCH_MAX_BYTES_PER_PARTITION,
  PRODUCER_RETRY,
  TRANSACTIONAL_RETRY,
} from "./tuning.js";
import type { Datacenter } from "./datacenters.js";
import type { EngineContext } from "./types.js";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { PartitionAssigners } = kafkajs;

export interface Destination {
  /** At-least-once: the sender straight to the target partitions' leaders. */
  direct?: DirectProducer;
  /**
   * Otherwise kafkajs's producer, created after the target topic is known so that its metadata has every
   * target partition (kafkajs silently drops records for partitions missing from its metadata).
   */
  producer?: Producer;
}

/**
 * The destination sender of a pipeline; each partition has one send in flight at a time either way.
 * At-least-once, the senders of every pipeline into one datacenter share its `DirectCluster` (one set
 * of connections per destination and engine, whatever the number of topics).
 */
export function createDestination(
  ctx: EngineContext,
  dst: Datacenter,
  targetTopic: string,
  groupId: string,
  log: Logger,
): Destination {
  const { kafka } = dst;
  const exactlyOnce = ctx.delivery === "exactly-once";
  if (!exactlyOnce) {
    if (dst.senders === undefined) dst.senders = DirectCluster.create(kafka) ?? null;
    const direct = dst.senders?.producer(targetTopic, {
      maxInFlightRequests: DIRECT_REQUESTS_IN_FLIGHT,
      maxRetryMs: DIRECT_MAX_RETRY_MS,
    });
    if (direct) return { direct };
  }
  if (!exactlyOnce) log.info("kafkajs cluster factory not found: sending through kafkajs's producer");
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: exactlyOnce ? TRANSACTIONAL_RETRY : PRODUCER_RETRY,
    ...(exactlyOnce ? { transactionalId: `${groupId}.${ctx.engine.index}`, transactionTimeout: 30_000 } : {}),
  });
  return { producer };
}

/** The consumer of a pipeline's group, its partitions split by engine index (../assignment.ts). */
export function createSourceConsumer(
  ctx: EngineContext,
  kafka: Kafka,
  groupId: string,
  log: Logger,
): Consumer {
  const config = ctx.config().replicator;
  const slot: EngineSlot = ctx.engine;
  return kafka.consumer({
    groupId,
    sessionTimeout: config.sessionTimeoutMs,
    rebalanceTimeout: config.rebalanceTimeoutMs,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
    maxBytes: FETCH_MAX_BYTES,
    allowAutoTopicCreation: false,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
    // The split by engine index (../assignment.ts): exactly-once strictly, at-least-once shared between
    // processes; at-least-once also offers kafkajs's round-robin, the protocol of versions before the split,
    // so that a group still holding such members goes on during a rolling upgrade.
    partitionAssigners: [
      staticPartitionAssigner(
        slot,
        (split) => {
          if (split.idle.length > 0) log.warn({ idle: split.idle }, "group members left without partitions");
          if (split.unassigned.length > 0)
            log.info(
              { unassigned: split.unassigned, engines: split.count },
              "partitions unassigned until their engine joins",
            );
        },
        ctx.delivery === "exactly-once" ? "static" : "preferred",
      ),
      ...(ctx.delivery === "exactly-once" ? [] : [PartitionAssigners.roundRobin]),
    ],
  });
}

/** Delivery through a kafkajs producer or transaction: acks=all, and every partition sent to acknowledged. */
export function viaKafkajs(producer: Pick<Producer, "send">, topic: string) {
  return async (messages: Message[]): Promise<void> => {
    const wanted = new Set(messages.map((m) => m.partition));
    const acked = await producer.send({ topic, acks: -1, messages });
    // kafkajs drops records for a partition missing from its metadata without an error: never accept that.
    for (const partition of wanted) {
      if (!acked.some((a) => a.topicName === topic && a.partition === partition && a.errorCode === 0)) {
        throw new KafkaError(
          "NOT_ACKNOWLEDGED",
          `${topic}[${partition}]: no acknowledgement from the destination (stale metadata?)`,
        );
      }
    }
  };
}
