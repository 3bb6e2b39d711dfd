/**
 * The kafkajs clients of the replication: a datacenter pair's source consumer and producer (./link.ts),
 * and a target topic's sender straight to its partition leaders (at-least-once).
 */
import kafkajs, { type Consumer, type Kafka, type Message, type Producer } from "kafkajs";
import type { Logger } from "pino";
import type { TopicRequest } from "../transactions.js";
import { staticPartitionAssigner, type EngineSlot } from "../assignment.js";
import { DirectCluster, type DirectProducer } from "../../kafka/direct-producer.js";
import { KafkaError } from "../../kafka/errors.js";
import {
  DIRECT_INITIAL_RETRY_MS,
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

/**
 * At-least-once: the sender of one target topic, straight to its partitions' leaders. The senders of
 * every topic into one datacenter share its `DirectCluster` (one set of connections per destination and
 * engine, whatever the number of topics). Undefined when kafkajs's internals are off limits: the link's
 * kafkajs producer sends then (`linkProducer`).
 */
export function directSender(dst: Datacenter, targetTopic: string): DirectProducer | undefined {
  if (dst.senders === undefined) dst.senders = DirectCluster.create(dst.kafka) ?? null;
  return dst.senders?.producer(targetTopic, {
    maxInFlightRequests: DIRECT_REQUESTS_IN_FLIGHT,
    initialRetryMs: DIRECT_INITIAL_RETRY_MS,
    maxRetryMs: DIRECT_MAX_RETRY_MS,
  });
}

/**
 * The kafkajs producer of a datacenter pair (./link.ts): exactly-once, transactional with the id
 * `<group id>.<engine index>` (one per pair and engine, whatever the number of topics); at-least-once,
 * only when the direct sender is not available. Idempotent, one request in flight per broker. kafkajs
 * adds a topic to its metadata on its first send there.
 */
export function linkProducer(ctx: EngineContext, dst: Datacenter, groupId: string): Producer {
  const exactlyOnce = ctx.delivery === "exactly-once";
  return dst.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: exactlyOnce ? TRANSACTIONAL_RETRY : PRODUCER_RETRY,
    ...(exactlyOnce ? { transactionalId: `${groupId}.${ctx.engine.index}`, transactionTimeout: 30_000 } : {}),
  });
}

/** The consumer of a datacenter pair's group, its partitions split by engine index (../assignment.ts). */
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
export function viaKafkajs(producer: Pick<Producer, "sendBatch">, topic: string) {
  return (messages: Message[]): Promise<void> => sendAcknowledged(producer, [{ topic, messages }]);
}

/** One produce request holding several target topics; every (topic, partition) must be acknowledged. */
export async function sendAcknowledged(
  producer: Pick<Producer, "sendBatch">,
  topicMessages: TopicRequest[],
): Promise<void> {
  const acked = await producer.sendBatch({ acks: -1, topicMessages });
  // kafkajs drops records for a partition missing from its metadata without an error: never accept that.
  for (const { topic, messages } of topicMessages) {
    for (const partition of new Set(messages.map((m) => m.partition))) {
      if (!acked.some((a) => a.topicName === topic && a.partition === partition && a.errorCode === 0)) {
        throw new KafkaError(
          "NOT_ACKNOWLEDGED",
          `${topic}[${partition}]: no acknowledgement from the destination (stale metadata?)`,
        );
      }
    }
  }
}
