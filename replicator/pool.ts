/**
 * Several replication engines in one process (`replicator.workers`).
 *
 * One engine (./engine.ts) replicates on one thread: decoding fetched records, building produce requests
 * and the socket writes of a pipeline all share one core. A pool runs N engines with the same
 * configuration: the first on the main thread, the others in worker threads. They are replicators with
 * the same id, so they split every pipeline's source partitions through its consumer group, elect one leader among themselves (it alone creates
 * target topics), and take over the partitions of an engine that stops — exactly as separate replicator
 * processes with the same id do. The pool answers for all of them: merged health and status
 * (./aggregate.ts), one Prometheus exposition (counters and histograms summed), configuration changes
 * and shutdown forwarded to every engine. An engine whose thread dies is started again after a second.
 *
 * Exactly-once: each engine knows its index k and the engine count n; it owns the source partitions p with
 * p mod n = k of every pipeline and has its own transactional id per pipeline (./assignment.ts). The
 * engine count, like the delivery, is fixed for the life of the process: changes take effect after a
 * restart.
 */
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from "prom-client";
import { mergeHealth, mergeStatus, type Health } from "./aggregate.js";
import { resolveWorkers, type ReplicatorConfig } from "./config.js";
import { Replicator, type ReplicatorStatus } from "./engine.js";
import { ReplicatorError } from "./errors.js";
import { errorFields } from "../common/log.js";
import { createMetrics } from "./metrics.js";

export interface WorkerData {
  config: ReplicatorConfig;
  logLevel: string;
  index: number;
  /** Engines in the pool. */
  count: number;
}

export type PoolRequest =
  | { id: number; op: "status"; lag: boolean }
  | { id: number; op: "health" | "metrics" | "stop" }
  | { id: number; op: "config"; config: ReplicatorConfig };

export type PoolReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string }
  | { event: "started" }
  | { event: "failed"; error: string };

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };

/** How long a request to an engine may take (a status with lag asks the source cluster). */
const REQUEST_TIMEOUT_MS = 30_000;
const RESTART_DELAY_MS = 1000;

// Compiled (.js) or run from source with tsx (.ts): the worker entry sits next to this module.
const WORKER_ENTRY = new URL(`./worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** One engine of the pool, wherever it runs. */
interface Engine {
  readonly index: number;
  start(): Promise<void>;
  health(): Promise<Health>;
  status(lag: boolean): Promise<ReplicatorStatus>;
  metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  updateConfig(config: ReplicatorConfig): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An engine on the current thread: the pool's engine 0 (no thread to start, its first records flow
 * sooner), and the engine inside each worker thread (./worker.ts).
 */
export class LocalEngine implements Engine {
  private readonly replicator: Replicator;

  constructor(
    config: ReplicatorConfig,
    logger: Logger,
    readonly index = 0,
    count = 1,
  ) {
    this.replicator = new Replicator(config, {
      logger: logger.child({ worker: index }),
      metrics: createMetrics(),
      engine: { index, count },
    });
  }

  start(): Promise<void> {
    return this.replicator.start();
  }

  async health(): Promise<Health> {
    return this.replicator.health();
  }

  status(lag: boolean): Promise<ReplicatorStatus> {
    return this.replicator.status({ lag });
  }

  metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.replicator.metrics.registry.getMetricsAsJSON();
  }

  async updateConfig(config: ReplicatorConfig): Promise<void> {
    this.replicator.updateConfig(config);
  }

  stop(): Promise<void> {
    return this.replicator.stop();
  }
}

/**
 * An engine in a worker thread (./worker.ts), asked over its message port; started again when its thread
 * dies. Exported for tests, which give it another entry script.
 */
export class EngineThread implements Engine {
  private worker?: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;

  constructor(
    readonly index: number,
    private readonly count: number,
    private config: ReplicatorConfig,
    private readonly logLevel: string,
    private readonly logger: Logger,
    private readonly entry: URL = WORKER_ENTRY,
  ) {}

  /** Starts the thread; resolves after the engine's first discovery round. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const data: WorkerData = {
        config: this.config,
        logLevel: this.logLevel,
        index: this.index,
        count: this.count,
      };
      const worker = new Worker(this.entry, { workerData: data, name: `replicator-engine-${this.index}` });
      this.worker = worker;
      let started = false;
      worker.on("message", (message: PoolReply) => {
        if ("event" in message) {
          if (message.event === "started") {
            started = true;
            resolve();
          } else {
            reject(new ReplicatorError("WORKER_FAILED", `engine ${this.index}: ${message.error}`));
          }
          return;
        }
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new ReplicatorError("WORKER_FAILED", `engine ${this.index}: ${message.error}`));
      });
      worker.on("error", (err) => {
        this.logger.error({ worker: this.index, err: errorFields(err) }, "replication engine thread failed");
      });
      worker.on("exit", (code) => {
        if (this.worker === worker) this.worker = undefined;
        for (const pending of this.pending.values())
          pending.reject(new ReplicatorError("WORKER_FAILED", `engine ${this.index} exited (code ${code})`));
        this.pending.clear();
        if (!started) {
          reject(
            new ReplicatorError("WORKER_FAILED", `engine ${this.index} exited (code ${code}) while starting`),
          );
          return;
        }
        if (this.stopping) return;
        this.logger.error({ worker: this.index, code }, "replication engine thread exited; restarting it");
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          if (this.stopping) return;
          this.start().catch((err: unknown) =>
            this.logger.error(
              { worker: this.index, err: errorFields(err) },
              "replication engine restart failed",
            ),
          );
        }, RESTART_DELAY_MS);
      });
    });
  }

  private request(op: "health" | "metrics" | "stop"): Promise<unknown>;
  private request(op: "status", extra: { lag: boolean }): Promise<unknown>;
  private request(op: "config", extra: { config: ReplicatorConfig }): Promise<unknown>;
  private request(op: PoolRequest["op"], extra: object = {}): Promise<unknown> {
    const worker = this.worker;
    if (!worker)
      return Promise.reject(new ReplicatorError("WORKER_FAILED", `engine ${this.index} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new ReplicatorError("WORKER_FAILED", `engine ${this.index} did not answer '${op}'`, {
            retriable: true,
          }),
        );
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      worker.postMessage({ id, op, ...extra } as PoolRequest);
    });
  }

  async health(): Promise<Health> {
    return (await this.request("health")) as Health;
  }

  async status(lag: boolean): Promise<ReplicatorStatus> {
    return (await this.request("status", { lag })) as ReplicatorStatus;
  }

  async metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return (await this.request("metrics")) as MetricObjectWithValues<MetricValue<string>>[];
  }

  async updateConfig(config: ReplicatorConfig): Promise<void> {
    this.config = config;
    await this.request("config", { config });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    try {
      await this.request("stop");
    } catch (err) {
      this.logger.warn(
        { worker: this.index, err: errorFields(err) },
        "replication engine did not stop cleanly",
      );
    }
    await worker.terminate();
  }
}

export interface PoolOptions {
  logger: Logger;
  logLevel: string;
  /** Engines to run; default: `replicator.workers` resolved for this machine's cores. */
  workers?: number;
}

export class ReplicatorPool {
  private readonly engines: Engine[];
  private readonly logger: Logger;
  /** Process-wide metrics (CPU, memory, event loop of the main thread), exposed next to the engines'. */
  private readonly processRegistry = new Registry();
  /** The delivery the engines started with (a change takes effect after a restart). */
  private readonly delivery: ReplicatorConfig["replicator"]["delivery"];

  constructor(config: ReplicatorConfig, options: PoolOptions) {
    this.logger = options.logger;
    this.delivery = config.replicator.delivery;
    const count = options.workers ?? resolveWorkers(config, availableParallelism());
    this.engines = [
      new LocalEngine(config, options.logger, 0, count),
      ...Array.from(
        { length: count - 1 },
        (_, i) => new EngineThread(i + 1, count, config, options.logLevel, options.logger),
      ),
    ];
    collectDefaultMetrics({ register: this.processRegistry, prefix: "lp_replicator_" });
  }

  /** Starts every engine; resolves when each finished its first discovery round. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.engines.map((e) => e.start()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await this.stop();
      throw failed.reason;
    }
    this.logger.info({ workers: this.engines.length }, "replication engines started");
  }

  updateConfig(config: ReplicatorConfig): void {
    // The engine count and the delivery keep their values until a restart: the static exactly-once split
    // and the transactional ids depend on both (./assignment.ts), and a consumer group cannot mix
    // round-robin and static members. The delivery is pinned here, so an engine thread started again
    // later (with the latest configuration) runs the same delivery as the others.
    if (config.replicator.delivery !== this.delivery) {
      this.logger.warn(
        { running: this.delivery, configured: config.replicator.delivery },
        "replicator.delivery changed: takes effect after a restart",
      );
      config = { ...config, replicator: { ...config.replicator, delivery: this.delivery } };
    }
    const count = resolveWorkers(config, availableParallelism());
    if (count !== this.engines.length) {
      this.logger.warn(
        { running: this.engines.length, configured: count },
        "replicator.workers changed: takes effect after a restart",
      );
    }
    for (const thread of this.engines) {
      thread
        .updateConfig(config)
        .catch((err: unknown) =>
          this.logger.error(
            { worker: thread.index, err: errorFields(err) },
            "configuration not applied by an engine",
          ),
        );
    }
  }

  /** Drains and stops every engine (each commits what its destination acknowledged). */
  async stop(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.stop()));
  }

  async health(): Promise<Health> {
    const parts = await Promise.allSettled(this.engines.map((e) => e.health()));
    return mergeHealth(
      parts.map((p) => (p.status === "fulfilled" ? p.value : { ok: false, datacenters: [] })),
    );
  }

  async status(options: { lag?: boolean } = {}): Promise<ReplicatorStatus & { workers: number }> {
    return mergeStatus(await Promise.all(this.engines.map((e) => e.status(options.lag ?? false))));
  }

  /** One Prometheus exposition: the engines' metrics aggregated, plus the process's own. */
  async metricsText(): Promise<{ contentType: string; text: string }> {
    const parts = await Promise.all(this.engines.map((e) => e.metrics()));
    const registry = AggregatorRegistry.aggregate([await this.processRegistry.getMetricsAsJSON(), ...parts]);
    return { contentType: registry.contentType, text: await registry.metrics() };
  }
}
