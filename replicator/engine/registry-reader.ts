/**
 * The registry reader of one datacenter: reads its registry topic from the beginning (a fresh group) and
 * keeps following it, keeping the registrations (../registry.ts) the planning round reads.
 */
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { OWN_TOPIC_PREFIX } from "../config.js";
import { ConfigError } from "../errors.js";
import { REGISTRY_TOPIC, parseRegistration, type Registration } from "../registry.js";
import { errorFields } from "../../common/log.js";
import type { EngineContext } from "./types.js";

/** Where a reader reads and what it fills: one datacenter's client and registrations. */
export interface RegistrySource {
  name: string;
  kafka: Kafka;
  registrations: Map<string, Registration>;
}

export class RegistryReader {
  private consumer?: Consumer;

  /** `onGone` runs when the reader failed to start or ended for good: the next round starts a new one. */
  constructor(
    private readonly ctx: EngineContext,
    private readonly source: RegistrySource,
    private readonly onGone: () => void,
  ) {}

  async start(): Promise<void> {
    const { ctx, source } = this;
    const config = ctx.config().replicator;
    const consumer = source.kafka.consumer({
      groupId: `${OWN_TOPIC_PREFIX}${config.id}.registry.${source.name}.${randomUUID()}`,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 200,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    const log = ctx.logger.child({ datacenter: source.name });
    consumer.on(consumer.events.CRASH, (event) => {
      const restart = (event.payload as { restart?: boolean }).restart === true;
      ctx.metrics.errors.inc({ kind: "registry" });
      log.warn({ err: errorFields(event.payload.error), restart }, "registry reader crashed");
      // kafkajs gave up on it: the next round starts a new reader (from the beginning, a fresh group).
      if (!restart && this.consumer === consumer) void this.gone();
    });
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
              source.registrations.set(topic, registration);
              log.info({ registration }, "application registered");
            } else if (source.registrations.delete(topic)) {
              log.info({ topic }, "application unregistered");
            }
            ctx.wake();
          } catch (err) {
            ctx.metrics.errors.inc({ kind: "registration" });
            log.error(
              { err: errorFields(err), ...(err instanceof ConfigError ? { issues: err.issues } : {}) },
              "invalid registration ignored",
            );
          }
        },
      });
    } catch (err) {
      ctx.metrics.errors.inc({ kind: "registry" });
      log.warn({ err: errorFields(err) }, "registry reader failed to start; retrying next round");
      await this.gone();
    }
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
  }

  private async gone(): Promise<void> {
    this.onGone();
    await this.stop();
  }
}
