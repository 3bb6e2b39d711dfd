/**
 * The dead-letter topic of a pipeline: where a record the destination refused goes under the
 * `dead-letter` error policy, in the destination datacenter. The copy keeps the record's key, value,
 * timestamp and headers in order, with its provenance (`lp.origin.*`) and why it was refused:
 * `lp.error.reason` (e.g. MESSAGE_TOO_LARGE), `lp.error.message`, `lp.error.pipeline`, `lp.error.target`.
 */
import type { Admin, Kafka, KafkaMessage, Message, Producer } from "kafkajs";
import { OWN_TOPIC_PREFIX, type ReplicatorConfig } from "../config.js";
import type { Pipeline } from "../plan.js";
import { provenanceHeaders, type Headers } from "../policy.js";
import { HEADER_LIST, headerListOf, setHeaders, type WithHeaderList } from "../../kafka/headers.js";
import { viaKafkajs } from "./clients.js";
import { PRODUCER_RETRY } from "./tuning.js";

export const ERROR_HEADERS = {
  reason: "lp.error.reason",
  message: "lp.error.message",
  pipeline: "lp.error.pipeline",
  target: "lp.error.target",
} as const;

/** The dead-letter topic's own limit: records up to 16 MiB (the broker default is 1 MiB). */
export const DEAD_LETTER_MAX_BYTES = 16 * 1024 * 1024;

/** The pipeline's error policy: its rule's, else the replicator's default. */
export function errorPolicyOf(config: ReplicatorConfig, pipeline: Pipeline): "stop" | "dead-letter" {
  const rule = pipeline.rule >= 0 ? config.replication[pipeline.rule] : undefined;
  return rule?.errorPolicy ?? config.replicator.errorPolicy;
}

/** The dead-letter topic's name: the rule's `deadLetterTopic`, else `lp.replicator.dlq.<dc>.<topic>`. */
export function deadLetterTopicOf(config: ReplicatorConfig, pipeline: Pipeline): string {
  const rule = pipeline.rule >= 0 ? config.replication[pipeline.rule] : undefined;
  return (
    rule?.deadLetterTopic ??
    `${OWN_TOPIC_PREFIX}dlq.${pipeline.sourceDc}.${pipeline.sourceTopic}`.slice(0, 249)
  );
}

/** The dead-letter copy of a refused record (pure). */
export function deadLetterMessage(
  pipeline: Pipeline,
  message: KafkaMessage,
  sourcePartition: number,
  failure: { reason: string; message: string },
): Message & WithHeaderList {
  const headers = message.headers as Headers | undefined;
  const source = {
    dc: pipeline.sourceDc,
    topic: pipeline.sourceTopic,
    partition: sourcePartition,
    offset: message.offset,
  };
  const list = setHeaders(headerListOf(message as WithHeaderList), [
    ...provenanceHeaders(headers, source),
    [ERROR_HEADERS.reason, failure.reason],
    [ERROR_HEADERS.message, failure.message.slice(0, 1000)],
    [ERROR_HEADERS.pipeline, pipeline.id],
    [ERROR_HEADERS.target, pipeline.targetTopic],
  ]);
  const out: Message & WithHeaderList = {
    key: message.key,
    value: message.value,
    timestamp: message.timestamp,
    partition: 0,
  };
  out[HEADER_LIST] = list;
  return out;
}

/** Writes refused records to a pipeline's dead-letter topic (created on first use, one partition). */
export class DeadLetterWriter {
  private producer?: Producer;
  private ready?: Promise<void>;

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    readonly topic: string,
  ) {}

  async write(message: Message): Promise<void> {
    this.ready ??= this.setUp().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    await this.ready;
    await viaKafkajs(this.producer!, this.topic)([message]);
  }

  private async setUp(): Promise<void> {
    const topics = await this.admin.listTopics();
    if (!topics.includes(this.topic)) {
      await this.admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: this.topic,
            numPartitions: 1,
            configEntries: [{ name: "max.message.bytes", value: String(DEAD_LETTER_MAX_BYTES) }],
          },
        ],
      });
    }
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: PRODUCER_RETRY,
    });
    await this.producer.connect();
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
  }
}
