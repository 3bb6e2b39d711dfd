/**
 * Read-only replica: consumes the license events stream (the local topic and/or topics replicated from
 * other datacenters, e.g. `dc1.licensing.events`) from this datacenter's Kafka, read_committed, from
 * the earliest offset, and applies each event to the local store idempotently (once per event id;
 * per license the newest change wins). Topics that do not exist yet are subscribed once they appear.
 *
 * Chains are read-only here: {@link ReadOnlyChainClient} has no signer, its probe checks chain id,
 * head block and contract code only.
 */
import type { Consumer, Kafka } from "kafkajs";
import { Wallet } from "ethers";
import type { Logger } from "pino";
import { createKafka } from "../kafka/client.js";
import type { ResolvedKafkaSecurity } from "../kafka/security.js";
import { Counter, Gauge, type Registry } from "prom-client";
import { ChainClient, type ChainHealth } from "./chain.js";
import { rpcFailure, withTimeout } from "./rpc-errors.js";
import type { ReplicaConfig, ResolvedChain } from "./config.js";
import { EventParseError, parseEvent } from "./events.js";
import type { ReplicaStore } from "./store/types.js";
import { errorFields, errorText } from "../common/log.js";
import { Wakeable } from "../common/time.js";

export class ReadOnlyChainClient extends ChainClient {
  private misses = 0;

  constructor(config: ResolvedChain) {
    // a throw-away key: the wallet of a replica never signs, holds no funds and is never shown
    super(config, Wallet.createRandom().privateKey);
  }

  override async probe(timeoutMs: number, failuresToDown: number): Promise<ChainHealth> {
    const started = Date.now();
    try {
      const head = await withTimeout(
        (async () => {
          const [chainIdHex, block, code] = await Promise.all([
            this.provider.send("eth_chainId", []) as Promise<string>,
            this.provider.getBlockNumber(),
            this.provider.getCode(this.config.contract),
          ]);
          if (Number(chainIdHex) !== this.chainId)
            throw rpcFailure(`chain id ${Number(chainIdHex)} != ${this.chainId}`);
          if (code === "0x") throw rpcFailure(`no contract at ${this.config.contract}`);
          return block;
        })(),
        timeoutMs,
      );
      this.misses = 0;
      this.health = {
        healthy: true,
        lastCheckedAt: Date.now(),
        headBlock: head,
        latencyMs: Date.now() - started,
      };
    } catch (error) {
      this.misses++;
      this.health = {
        ...this.health,
        healthy: this.health.healthy && this.misses < failuresToDown,
        lastCheckedAt: Date.now(),
        error: errorText(error).slice(0, 200),
      };
    }
    return this.health;
  }
}

export interface ReplicaMetrics {
  events: Counter<"result">;
  lastAppliedAt: Gauge;
}

export class ReplicaConsumer {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private subscribed: string[] = [];
  private stopped = true;
  private loop: Promise<void> | undefined;
  private readonly idle = new Wakeable();
  private crashed = false;
  readonly metrics: ReplicaMetrics;
  /** Counts by result since start (also in the metrics). */
  readonly counts = { applied: 0, duplicate: 0, stale: 0, invalid: 0 };

  constructor(
    private readonly store: ReplicaStore,
    private readonly config: ReplicaConfig,
    private readonly logger: Logger,
    registry: Registry,
    /** TLS and SASL of the cluster, secrets resolved (`kafkaSecurityOf` in ./config.ts). */
    security: ResolvedKafkaSecurity = {},
  ) {
    this.kafka = createKafka(
      {
        clientId: `licensing-replica-${config.groupId}`,
        brokers: config.brokers,
        security,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10_000,
        retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
      },
      logger,
    );
    this.metrics = {
      events: new Counter({
        name: "license_replica_events_total",
        help: "Replicated lifecycle events by result (applied, duplicate, stale, invalid)",
        labelNames: ["result"],
        registers: [registry],
      }),
      lastAppliedAt: new Gauge({
        name: "license_replica_last_applied_timestamp_seconds",
        help: "When the replica last applied an event",
        registers: [registry],
      }),
    };
  }

  /** Topics currently consumed. */
  topics(): string[] {
    return [...this.subscribed];
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.idle.wake();
    await this.loop;
    await this.disconnect();
  }

  /** Keeps a consumer on every configured topic that exists; re-subscribes when more appear or after a crash. */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const existing = await this.existingTopics();
        const missing = existing.filter((t) => !this.subscribed.includes(t));
        if (this.crashed || missing.length > 0) {
          await this.disconnect();
          if (this.stopped) break;
          await this.subscribe(existing);
        }
        failures = 0;
      } catch (error) {
        failures++;
        this.logger.warn(
          { err: errorFields(error), failures },
          "replica consumer: Kafka not reachable; retrying",
        );
      }
      await this.sleep(
        failures > 0 ? Math.min(500 * 2 ** Math.min(failures, 5), 10_000) : this.config.topicCheckMs,
      );
    }
  }

  private async existingTopics(): Promise<string[]> {
    const admin = this.kafka.admin({ retry: { retries: 1, initialRetryTime: 200 } });
    await admin.connect();
    try {
      const all = new Set(await admin.listTopics());
      return this.config.topics.filter((t) => all.has(t));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async subscribe(topics: string[]): Promise<void> {
    if (this.store.appliedEventCount() === 0) await this.rewind(topics);
    const consumer = this.kafka.consumer({
      groupId: this.config.groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    });
    this.crashed = false;
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) this.crashed = true;
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          this.apply(topic, partition, message.offset, message.value);
          return Promise.resolve();
        },
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
    this.consumer = consumer;
    this.subscribed = topics;
    this.logger.info({ topics }, "replica consumer subscribed");
  }

  /**
   * A fresh database needs the whole stream: the group's committed offsets (left by an earlier database
   * under the same group id) are moved back to the earliest ones.
   */
  private async rewind(topics: string[]): Promise<void> {
    const admin = this.kafka.admin({ retry: { retries: 1, initialRetryTime: 200 } });
    await admin.connect();
    try {
      const committed = await admin.fetchOffsets({ groupId: this.config.groupId, topics });
      for (const { topic, partitions } of committed) {
        if (partitions.every((p) => p.offset === "-1")) continue;
        await admin.resetOffsets({ groupId: this.config.groupId, topic, earliest: true });
        this.logger.info(
          { topic, groupId: this.config.groupId },
          "replica: empty database, rewound the group",
        );
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private apply(topic: string, partition: number, offset: string, value: Buffer | null): void {
    let event;
    try {
      event = parseEvent(value);
    } catch (error) {
      if (!(error instanceof EventParseError)) throw error;
      this.counts.invalid++;
      this.metrics.events.inc({ result: "invalid" });
      this.logger.warn(
        { topic, partition, offset, err: errorFields(error) },
        "replica: skipped an invalid event",
      );
      return;
    }
    // a database error throws: kafkajs does not commit the offset and delivers the message again
    const result = this.store.applyEvent(event);
    this.counts[result]++;
    this.metrics.events.inc({ result });
    if (result === "applied") this.metrics.lastAppliedAt.set(Date.now() / 1000);
  }

  private async disconnect(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    this.subscribed = [];
    await consumer?.disconnect().catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    return this.stopped ? Promise.resolve() : this.idle.sleep(ms);
  }
}
