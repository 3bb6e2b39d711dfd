/**
 * The datacenters of one engine: per datacenter its kafkajs client and admin, whether its last discovery
 * answered, its topics, and what its registry topic announced. An unreachable datacenter (its discovery
 * failed, or a pipeline's send to it did and a check confirmed it) is probed on its own, every 500 ms
 * whatever the outage's length, and the pipelines hear of its return at once (`onReachable`). One log
 * line when it goes, one when it comes back.
 */
import type { Admin, Kafka } from "kafkajs";
import { datacenterSecurity, OWN_TOPIC_PREFIX, type DatacenterConfig } from "../config.js";
import { ReplicatorError } from "../errors.js";
import { REGISTRY_TOPIC, type Registration } from "../registry.js";
import { createKafka } from "../../kafka/client.js";
import type { DirectCluster } from "../../kafka/direct-producer.js";
import { ClusterReader } from "../../kafka/reader.js";
import type { ByteBudget } from "../byte-budget.js";
import { explainConnectionError } from "../../kafka/security.js";
import { errorFields, errorText } from "../../common/log.js";
import { causes } from "./faults.js";
import type { RegistryReader } from "./registry-reader.js";
import { DISCOVERY_BACKOFF, REFUSED_BACKOFF } from "./tuning.js";
import type { EngineContext } from "./types.js";

export interface Datacenter {
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
  registryReader?: RegistryReader;
  registrations: Map<string, Registration>;
  /** The discovery in flight, if any. */
  discovery?: Promise<void>;
  /** Topic → partition count, from the last successful discovery. */
  topics: Map<string, number>;
  /** The probe of an unreachable datacenter, scheduled after the backoff. */
  probe?: NodeJS.Timeout;
  /** When its discovery last answered (ms since the epoch). */
  answeredAt?: number;
  /**
   * At-least-once: the one cluster the senders of every pipeline into this datacenter share (created on
   * first use; null when kafkajs's internals are off limits: each pipeline uses a kafkajs producer).
   */
  senders?: DirectCluster | null;
  /** Target topics this engine created here (the topic list shows new topics only seconds later). */
  createdTargets: Set<string>;
  /** At-least-once: the record bytes in flight to this datacenter, over all its topics (back-pressure). */
  sendBudget?: ByteBudget;
  /** Watermarks and writability of many topics at once (lag, target readiness), created on first use. */
  reader?: ClusterReader;
}

/** The datacenter's batched reader (../../kafka/reader.ts; its admin connected by the caller). */
export function offsetsReader(dc: Datacenter): ClusterReader {
  dc.reader ??= ClusterReader.create(dc.kafka, dc.admin);
  return dc.reader;
}

/** Connects a datacenter's admin client once. */
export async function connectAdmin(dc: Datacenter): Promise<void> {
  if (dc.adminConnected) return;
  await dc.admin.connect();
  dc.adminConnected = true;
}

export class Datacenters {
  private readonly dcs = new Map<string, Datacenter>();

  constructor(
    private readonly ctx: EngineContext,
    /** A datacenter answered again after it was unreachable. */
    private readonly onReachable: (name: string) => void = () => undefined,
  ) {}

  /** The datacenter named `name`, its clients created on first use. */
  get(name: string): Datacenter {
    const known = this.dcs.get(name);
    if (known) return known;
    const index = this.ctx.config().datacenters.findIndex((d) => d.name === name);
    const config = this.ctx.config().datacenters[index];
    if (!config) throw new ReplicatorError("UNKNOWN_DATACENTER", `unknown datacenter '${name}'`);
    const id = this.ctx.config().replicator.id;
    const kafka = createKafka(
      {
        clientId: config.clientId ?? `lp-replicator-${id}-${name}`,
        brokers: config.brokers,
        connectionTimeoutMs: config.connectionTimeoutMs,
        requestTimeoutMs: config.requestTimeoutMs,
        // Admin calls fail fast (the discovery loop retries with backoff); producers and consumers set their own.
        retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
        // TLS and SASL, references resolved now; producers, consumers and the DirectProducer share this client.
        security: datacenterSecurity(this.ctx.config(), index),
      },
      this.ctx.logger.child({ datacenter: name }),
    );
    const dc: Datacenter = {
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
      createdTargets: new Set(),
    };
    this.dcs.set(name, dc);
    return dc;
  }

  /** The datacenter if its clients exist (no creation). */
  find(name: string): Datacenter | undefined {
    return this.dcs.get(name);
  }

  all(): Datacenter[] {
    return [...this.dcs.values()];
  }

  /** Names of the datacenters whose configuration changed or went away in `next`. */
  changed(next: readonly DatacenterConfig[]): string[] {
    return this.all()
      .filter((dc) => {
        const config = next.find((d) => d.name === dc.config.name);
        return !config || JSON.stringify(config) !== JSON.stringify(dc.config);
      })
      .map((dc) => dc.config.name);
  }

  /**
   * A send to `name` failed in a way worth retrying: checks now whether the datacenter answers (unless it
   * answered a moment ago or is known unreachable), so that an outage is seen, and its end, at once.
   * Resolves whether it answers.
   */
  async check(name: string): Promise<boolean> {
    const dc = this.dcs.get(name);
    if (!dc || !this.ctx.running()) return true;
    if (!dc.reachable) return false;
    if (Date.now() - (dc.answeredAt ?? 0) < DISCOVERY_BACKOFF.maxMs) return true; // it answered a moment ago
    dc.nextAttemptAt = 0;
    await this.discover(dc);
    return dc.reachable;
  }

  /** Drops a datacenter's clients (closed in the background); the next use creates new ones. */
  drop(name: string): void {
    const dc = this.dcs.get(name);
    if (!dc) return;
    this.dcs.delete(name);
    clearTimeout(dc.probe);
    void close(dc);
  }

  /** Waits for the discoveries in flight, then closes every datacenter's clients. */
  async closeAll(): Promise<void> {
    const all = this.all();
    for (const dc of all) clearTimeout(dc.probe);
    await Promise.all(all.map((dc) => dc.discovery ?? Promise.resolve()));
    await Promise.all(all.map(close));
    this.dcs.clear();
  }

  /** Starts a discovery of `dc` unless one is in flight; resolves when it ends. */
  discover(dc: Datacenter): Promise<void> {
    dc.discovery ??= this.discoverOnce(dc).finally(() => {
      dc.discovery = undefined;
    });
    return dc.discovery;
  }

  /** Lists the topics (and partition counts) of a datacenter; on failure marks it unreachable with backoff. */
  private async discoverOnce(dc: Datacenter): Promise<void> {
    if (Date.now() < dc.nextAttemptAt) return;
    try {
      await connectAdmin(dc);
      // Every topic with its partitions in one metadata request (topics named, kafkajs would keep
      // refreshing them all: at 10,000 topics two requests of 10,000 a round).
      const all = (await dc.admin.fetchTopicMetadata()).topics;
      dc.hasRegistry = all.some((t) => t.name === REGISTRY_TOPIC);
      const topics = new Map<string, number>();
      for (const t of all)
        if (!t.name.startsWith("__") && !t.name.startsWith(OWN_TOPIC_PREFIX))
          topics.set(t.name, t.partitions.length);
      dc.topics = topics;
      const back = !dc.reachable;
      dc.answeredAt = Date.now();
      dc.reachable = true;
      dc.failures = 0;
      dc.lastError = undefined;
      if (back) {
        this.ctx.logger.info({ datacenter: dc.config.name }, "datacenter reachable again");
        this.onReachable(dc.config.name);
      }
    } catch (err) {
      dc.failures++;
      const { initialMs, maxMs } = refusesClient(err) ? REFUSED_BACKOFF : DISCOVERY_BACKOFF;
      const delay = Math.min(maxMs, initialMs * 2 ** Math.min(dc.failures - 1, 8));
      dc.nextAttemptAt = Date.now() + delay;
      // Probed on its own (a destination only is not in the discovery rounds), until it answers.
      clearTimeout(dc.probe);
      dc.probe = setTimeout(() => {
        dc.probe = undefined;
        dc.nextAttemptAt = 0;
        if (this.ctx.running() && this.dcs.get(dc.config.name) === dc) void this.discover(dc);
      }, delay);
      dc.probe.unref();
      // What the security settings suggest (a plaintext client at a TLS listener), in the log and /healthz.
      const error = explainConnectionError(errorText(err), dc.config.security);
      if (dc.reachable)
        this.ctx.logger.warn(
          { datacenter: dc.config.name, err: { ...errorFields(err), message: error } },
          "datacenter unreachable",
        );
      dc.reachable = false;
      dc.lastError = error;
      this.ctx.metrics.errors.inc({ kind: "unreachable" });
      if (dc.adminConnected) {
        dc.adminConnected = false;
        await dc.admin.disconnect().catch(() => undefined);
      }
    }
  }
}

/**
 * Whether a failure is the datacenter refusing this client (SASL, TLS, authorisation) rather than not
 * answering: the cause, or one of its causes, says so.
 */
export function refusesClient(err: unknown): boolean {
  for (const e of causes(err)) {
    const { name, message, type } = e as { name?: unknown; message?: unknown; type?: unknown };
    if (name === "KafkaJSSASLAuthenticationError") return true;
    if (
      typeof type === "string" &&
      /AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED|UNSUPPORTED_SASL_MECHANISM/.test(type)
    )
      return true;
    if (typeof message === "string" && REFUSAL.test(message)) return true;
  }
  return false;
}

const REFUSAL =
  /SASL|authenticat|certificate|self[- ]signed|unable to verify|handshake|wrong version number|before secure TLS connection/i;

async function close(dc: Datacenter): Promise<void> {
  const reader = dc.registryReader;
  const offsets = dc.reader;
  dc.registryReader = undefined;
  dc.reader = undefined;
  await Promise.all([
    dc.admin.disconnect().catch(() => undefined),
    reader?.stop(),
    offsets?.disconnect().catch(() => undefined),
  ]);
}
