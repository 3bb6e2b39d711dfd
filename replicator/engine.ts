/**
 * The replication engine (kafkajs), the facade over its parts in ./engine/: a discovery loop lists the
 * topics of every datacenter, plans the pipelines, creates target topics and runs one consumer group per
 * datacenter pair.
 *
 * Why one consumer per datacenter pair, not per topic: its cost (connections, fetches, commits, memory)
 * then grows with partitions and bytes, not with topics — 1,000 topics cost one consumer, not 1,000
 * (docs/replicator.md "Scale"). A running kafkajs consumer cannot add subscriptions, so a new topic
 * restarts the pair's consumer, every other partition resuming where it was committed.
 *
 * Where a record flows: ./engine/discovery.ts plans it, ./engine/targets.ts creates its target topic,
 * ./engine/link.ts fetches it, ./engine/pipeline.ts sends it (cut by ./engine/slicing.ts), ./engine/commits.ts commits its
 * source position once the destination acknowledged it (at-least-once, the default); exactly-once writes
 * records and positions in destination transactions (./transactions.ts). The other parts: datacenters
 * (./engine/datacenters.ts), leader election (./engine/election.ts), registry readers
 * (./engine/registry-reader.ts), status and lag (./engine/status.ts), tuning (./engine/tuning.ts).
 */
import type { ReplicatorConfig } from "./config.js";
import { ReplicatorError } from "./errors.js";
import { createMetrics, type ReplicatorMetrics } from "./metrics.js";
import { isValidSlot, type EngineSlot } from "./assignment.js";
import { errorFields } from "../common/log.js";
import { sleep, Wakeable } from "../common/time.js";
import { Datacenters } from "./engine/datacenters.js";
import { Discovery } from "./engine/discovery.js";
import { Election } from "./engine/election.js";
import { pipelineStatus, refreshLag, stoppedPartitions, type Lags } from "./engine/status.js";
import type { EngineContext, Health, ReplicatorStatus } from "./engine/types.js";
import type { Logger } from "pino";

export type { Health, PipelineStatus, ReplicatorStatus } from "./engine/types.js";
export { ELECTION_TOPIC } from "./engine/election.js";
export { COPIED_TOPIC_CONFIGS } from "./engine/targets.js";

export interface ReplicatorOptions {
  logger: Logger;
  metrics?: ReplicatorMetrics;
  /**
   * This engine's place among the engines of its process (./pool.ts); default index 0 of 1. Exactly-once
   * uses it for the static partition split and the transactional ids (./assignment.ts).
   */
  engine?: EngineSlot;
}

export class Replicator {
  private config: ReplicatorConfig;
  private readonly logger: Logger;
  readonly metrics: ReplicatorMetrics;
  private running = false;
  private loop?: Promise<void>;
  /** The election's first join, in flight beside the first discovery round. */
  private electing?: Promise<void>;
  private readonly wakeable = new Wakeable();
  private readonly dcs: Datacenters;
  private readonly election: Election;
  private readonly discovery: Discovery;
  /** The delivery this engine started with: a change takes effect after a restart (see updateConfig). */
  private readonly delivery: ReplicatorConfig["replicator"]["delivery"];

  constructor(config: ReplicatorConfig, options: ReplicatorOptions) {
    this.config = config;
    this.delivery = config.replicator.delivery;
    const engine = options.engine ?? { index: 0, count: 1 };
    if (!isValidSlot(engine))
      throw new ReplicatorError(
        "INVALID_ENGINE",
        `engine index ${engine.index} of ${engine.count} engines is not valid`,
      );
    this.logger = options.logger;
    this.metrics = options.metrics ?? createMetrics();
    const ctx: EngineContext = {
      config: () => this.config,
      logger: this.logger,
      metrics: this.metrics,
      engine,
      delivery: this.delivery,
      running: () => this.running,
      wake: () => this.wake(),
      isLeader: () => this.isLeader,
    };
    // A datacenter back after an outage: its pipelines' paused partitions resume now, the next round
    // starts the pipelines that could not start meanwhile.
    this.dcs = new Datacenters(ctx, (name) => {
      for (const task of this.discovery.tasks.values()) task.datacenterBack(name);
      this.wake();
    });
    this.election = new Election(ctx, () => {
      const home = this.config.replicator.datacenter ?? this.config.datacenters[0]?.name;
      return home === undefined ? undefined : this.dcs.get(home);
    });
    this.discovery = new Discovery(ctx, this.dcs, this.election);
    this.metrics.onCollectLag = async () => {
      await this.refreshLag().catch(() => undefined);
    };
  }

  /** Whether this instance may create target topics: the elected leader, or every instance without election. */
  get isLeader(): boolean {
    return !this.config.replicator.leaderElection || this.election.leader;
  }

  /** Starts the discovery loop; resolves after the first discovery round. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.logger.info({ id: this.config.replicator.id }, "replicator starting");
    // The election and the first round go on side by side: after a crash both groups wait for the killed
    // process's members (rebalanceTimeoutMs), and pipelines whose target exists need no leader. A pipeline
    // whose target is missing waits for the leader (./engine/targets.ts), this engine or another.
    if (this.config.replicator.leaderElection) this.electing = this.election.start();
    await this.discovery.round();
    if (!this.running) return; // stop() was called during the first round
    this.loop = this.discoveryLoop();
  }

  /**
   * Applies a new configuration; the next discovery round reconciles the pipelines. A changed
   * `replicator.delivery` takes effect after a restart: exactly-once engines split partitions statically
   * and at-least-once ones round-robin, and one consumer group cannot mix the two protocols
   * (INCONSISTENT_GROUP_PROTOCOL) — nor may an at-least-once engine take partitions whose transactional
   * id another engine holds.
   */
  updateConfig(config: ReplicatorConfig): void {
    if (config.replicator.delivery !== this.delivery) {
      this.logger.warn(
        { running: this.delivery, configured: config.replicator.delivery },
        "replicator.delivery changed: takes effect after a restart",
      );
      config = { ...config, replicator: { ...config.replicator, delivery: this.delivery } };
    }
    this.config = config;
    for (const name of this.dcs.changed(config.datacenters)) {
      // Changed or removed datacenter: drop its clients; pipelines using it restart on the next round.
      void this.discovery.stopDatacenter(name, "datacenter configuration changed");
      this.dcs.drop(name);
    }
    // A partition stopped at a refused record tries it again under the new configuration (its policy).
    for (const task of this.discovery.tasks.values()) task.retryStopped();
    this.logger.info("configuration updated");
    this.wake();
  }

  /** Graceful stop: no new discovery, each consumer finishes and commits its batch, clients disconnect. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop;
    await this.discovery.settled();
    await this.discovery.stopAll("shutdown");
    await this.election.stop();
    await this.electing;
    await this.dcs.closeAll();
    this.logger.info("replicator stopped");
  }

  /** Starts the next discovery round now: ends the wait, or the next one if a round is running. */
  private wake(): void {
    this.wakeable.wake();
  }

  private async discoveryLoop(): Promise<void> {
    while (this.running) {
      await this.wakeable.sleep(this.config.discovery.intervalMs);
      if (!this.running) break;
      try {
        await this.discovery.round();
      } catch (err) {
        this.metrics.errors.inc({ kind: "discovery" });
        this.logger.error({ err: errorFields(err) }, "discovery round failed");
      }
    }
  }

  private refreshLag(): Promise<Lags> {
    return refreshLag(this.discovery.tasks.values(), this.dcs, this.metrics);
  }

  /** The Prometheus exposition of this engine's registry. */
  async metricsText(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.metrics.registry.contentType, text: await this.metrics.registry.metrics() };
  }

  /** Whether every datacenter the replicator uses answered its last discovery. */
  health(): Health {
    const datacenters = this.dcs.all().map((dc) => ({
      name: dc.config.name,
      reachable: dc.reachable,
      ...(dc.lastError !== undefined ? { error: dc.lastError } : {}),
    }));
    const stopped = stoppedPartitions(this.discovery.tasks.values());
    return {
      ok: this.running && datacenters.every((d) => d.reachable) && stopped.length === 0,
      datacenters,
      ...(stopped.length > 0 ? { stopped } : {}),
    };
  }

  async status(options: { lag?: boolean } = {}): Promise<ReplicatorStatus> {
    const lags: Lags = options.lag ? await this.refreshLag().catch((): Lags => new Map()) : new Map();
    const tasks = [...this.discovery.tasks.values()];
    const planned = new Set(tasks.map((t) => `${t.pipeline.sourceDc}\u0000${t.pipeline.sourceTopic}`));
    const applications: ReplicatorStatus["applications"] = [];
    for (const dc of this.dcs.all()) {
      for (const [topic, partitions] of dc.topics) {
        if (planned.has(`${dc.config.name}\u0000${topic}`))
          applications.push({ datacenter: dc.config.name, topic, partitions });
      }
    }
    const { rounds, lastRoundAt, lastRoundMs } = this.discovery;
    return {
      id: this.config.replicator.id,
      running: this.running,
      leader: this.isLeader,
      discovery: {
        intervalMs: this.config.discovery.intervalMs,
        rounds,
        ...(lastRoundAt !== undefined ? { lastRoundAt: new Date(lastRoundAt).toISOString() } : {}),
        ...(lastRoundMs !== undefined ? { lastRoundMs } : {}),
      },
      datacenters: this.dcs.all().map((dc) => ({
        name: dc.config.name,
        reachable: dc.reachable,
        ...(dc.lastError !== undefined ? { error: dc.lastError } : {}),
        topics: dc.topics.size,
      })),
      applications,
      pipelines: tasks.map((task) => pipelineStatus(task, lags.get(task.id))),
    };
  }

  /** Test and tooling helper: resolves when the pipeline with this id is running. */
  async waitForPipeline(id: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.discovery.tasks.get(id)?.state === "running") return;
      await sleep(100, { unref: true });
    }
    throw new ReplicatorError("TIMEOUT", `pipeline ${id} not running after ${timeoutMs} ms`);
  }
}
