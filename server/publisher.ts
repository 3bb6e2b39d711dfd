/**
 * The events publisher: sends the outbox (lifecycle events committed with their state changes) to the
 * datacenter's Kafka topic with an idempotent producer (acks = all), key = license id so the events of
 * one license keep their order in one partition. A row is marked published only after the broker
 * acknowledged it; while Kafka is unreachable the rows stay and the loop retries with exponential
 * backoff, so nothing is dropped (at-least-once: consumers de-duplicate by `eventId`).
 */
import type { Admin, Kafka, Producer } from "kafkajs";
import type { Logger } from "pino";
import { createKafka } from "../kafka/client.js";
import type { ResolvedKafkaSecurity } from "../kafka/security.js";
import { Counter, Gauge, type Registry } from "prom-client";
import type { EventsConfig } from "./config.js";
import type { EventOutboxStore } from "./store/types.js";
import { Wakeable } from "../common/time.js";
import { errorFields } from "../common/log.js";

export interface PublisherMetrics {
  backlog: Gauge;
  published: Counter;
  errors: Counter;
}

export function publisherMetrics(registry: Registry): PublisherMetrics {
  const registers = [registry];
  return {
    backlog: new Gauge({
      name: "license_events_outbox_backlog",
      help: "Lifecycle events committed but not yet acknowledged by Kafka",
      registers,
    }),
    published: new Counter({
      name: "license_events_published_total",
      help: "Lifecycle events acknowledged by Kafka",
      registers,
    }),
    errors: new Counter({
      name: "license_events_publish_errors_total",
      help: "Failed attempts to publish the outbox (Kafka unreachable, topic creation, produce errors)",
      registers,
    }),
  };
}

export class EventPublisher {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private topicReady = false;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private readonly idle = new Wakeable();
  private failures = 0;
  readonly metrics: PublisherMetrics;

  constructor(
    private readonly store: EventOutboxStore,
    private readonly config: EventsConfig,
    private readonly logger: Logger,
    registry: Registry,
    /** TLS and SASL of the cluster, secrets resolved (`kafkaSecurityOf` in ./config.ts). */
    security: ResolvedKafkaSecurity = {},
  ) {
    this.kafka = createKafka(
      {
        clientId: `licensing-${config.datacenter}`,
        brokers: config.brokers,
        security,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10_000,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      },
      logger,
    );
    this.metrics = publisherMetrics(registry);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Publishes at once instead of at the next poll. */
  notify(): void {
    this.idle.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.idle.wake();
    await this.loop;
    await this.disconnect();
  }

  /** Events still waiting for an acknowledgement. */
  backlog(): number {
    return this.store.eventBacklog();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let sent = 0;
      try {
        this.metrics.backlog.set(this.store.eventBacklog());
        const batch = this.store.unpublishedEvents(this.config.batchSize);
        if (batch.length > 0) {
          const producer = await this.connect();
          await producer.send({
            topic: this.config.topic,
            acks: -1,
            messages: batch.map(({ licenseId, event }) => ({
              key: licenseId,
              value: JSON.stringify(event),
              headers: { "event-id": event.eventId, "event-type": event.type, origin: event.origin },
            })),
          });
          // acknowledged by all in-sync replicas: only now the rows count as published
          this.store.markPublished(batch.map((e) => e.seq));
          this.metrics.published.inc(batch.length);
          this.metrics.backlog.set(this.store.eventBacklog());
          sent = batch.length;
          if (this.failures > 0) this.logger.info({ failures: this.failures }, "events publishing resumed");
          this.failures = 0;
        }
      } catch (error) {
        this.failures++;
        this.metrics.errors.inc();
        this.topicReady = false; // checked again on the next attempt (e.g. the topic was deleted)
        const delay = Math.min(
          this.config.retry.initialMs * 2 ** Math.min(this.failures - 1, 20),
          this.config.retry.maxMs,
        );
        this.logger.warn(
          { err: errorFields(error), failures: this.failures, retryInMs: delay },
          "events publishing failed; retrying",
        );
        await this.disconnect();
        await this.sleep(delay);
        continue;
      }
      if (sent < this.config.batchSize) await this.sleep(this.config.pollMs);
    }
  }

  private async connect(): Promise<Producer> {
    if (!this.topicReady) {
      await this.ensureTopic();
      this.topicReady = true;
    }
    if (this.producer) return this.producer;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
    });
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    this.producer = producer;
    return producer;
  }

  /** Creates the topic when it is missing (`partitions`, broker default replication unless configured). */
  private async ensureTopic(): Promise<void> {
    const admin: Admin = this.kafka.admin({ retry: { retries: 2, initialRetryTime: 100 } });
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      if (topics.includes(this.config.topic)) return;
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: this.config.topic,
            numPartitions: this.config.partitions,
            ...(this.config.replicationFactor === undefined
              ? {}
              : { replicationFactor: this.config.replicationFactor }),
          },
        ],
      });
      this.logger.info(
        { topic: this.config.topic, partitions: this.config.partitions },
        "events topic created",
      );
    } catch (error) {
      // created concurrently by another instance
      if ((error as { type?: string }).type !== "TOPIC_ALREADY_EXISTS") throw error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async disconnect(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    return this.stopped ? Promise.resolve() : this.idle.sleep(ms);
  }
}
