/**
 * The planning round (the MirrorMaker 2 `MirrorSourceConnector` role): list the topics of every
 * datacenter, read the registrations, plan the pipelines (../plan.ts, pure) and reconcile the running
 * ones — start the new, stop those whose rule or source went away or changed, restart the failed.
 */
import { planPipelines, type Pipeline } from "../plan.js";
import type { Registration } from "../registry.js";
import { sleep } from "../../common/time.js";
import type { Datacenters } from "./datacenters.js";
import type { Election } from "./election.js";
import { PipelineTask } from "./pipeline.js";
import { RegistryReader } from "./registry-reader.js";
import type { EngineContext } from "./types.js";

export class Discovery {
  /** The pipelines of this engine, by id. */
  readonly tasks = new Map<string, PipelineTask>();
  rounds = 0;
  lastRoundAt?: number;
  lastRoundMs?: number;
  private readonly discovered = new Set<string>();
  private inFlight?: Promise<void>;

  constructor(
    private readonly ctx: EngineContext,
    private readonly dcs: Datacenters,
    private readonly election: Election,
  ) {}

  /** One discovery round at a time; a call during a round joins it. */
  round(): Promise<void> {
    return (this.inFlight ??= this.roundOnce().finally(() => {
      this.inFlight = undefined;
    }));
  }

  /** Waits for the round in flight, if any (stop()). */
  async settled(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
  }

  /** Stops a pipeline; the engine forgets it once stopped. */
  stopPipeline(task: PipelineTask, reason: string): Promise<void> {
    return task.stop(reason);
  }

  /** Stops every pipeline of a datacenter (its configuration changed); the next round restarts them. */
  stopDatacenter(name: string, reason: string): void {
    for (const task of [...this.tasks.values()]) {
      if (task.pipeline.sourceDc === name || task.pipeline.destinationDc === name)
        void this.stopPipeline(task, reason);
    }
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.tasks.values()].map((task) => this.stopPipeline(task, reason)));
  }

  private async roundOnce(): Promise<void> {
    const { ctx, dcs } = this;
    const config = ctx.config();
    const started = Date.now();
    const names = new Set<string>();
    // With registration on, every datacenter may announce applications.
    if (config.registry.enabled) config.datacenters.forEach((d) => names.add(d.name));
    for (const rule of config.replication) {
      if (rule.model === "active-active") rule.datacenters.forEach((d) => names.add(d));
      else rule.sources.forEach((d) => names.add(d));
    }
    // A slow or unreachable datacenter must not hold the others up: wait for each discovery at most
    // about one interval; a discovery still running goes on in the background (its last result is used).
    const pending = [...names].map((n) => dcs.discover(dcs.get(n)));
    await Promise.race([
      Promise.all(pending),
      sleep(Math.max(1000, config.discovery.intervalMs), { unref: true }),
    ]);

    const discovered = new Map<string, Set<string>>();
    for (const n of names) discovered.set(n, new Set(dcs.get(n).topics.keys()));
    if (config.replicator.leaderElection && !this.election.started && ctx.running())
      void this.election.start();
    const registrations = new Map<string, Map<string, Registration>>();
    if (config.registry.enabled) {
      for (const n of names) {
        const dc = dcs.get(n);
        if (dc.hasRegistry && !dc.registryReader && dc.reachable) {
          const reader: RegistryReader = new RegistryReader(
            ctx,
            { name: n, kafka: dc.kafka, registrations: dc.registrations },
            () => {
              if (dc.registryReader === reader) dc.registryReader = undefined;
            },
          );
          dc.registryReader = reader;
          void reader.start();
        }
        registrations.set(n, dc.registrations);
      }
    }
    const plan = planPipelines(discovered, config, registrations);
    const wanted = new Map(plan.map((p) => [p.id, p]));

    for (const p of plan) {
      const key = `${p.sourceDc}/${p.sourceTopic}`;
      if (!this.discovered.has(key)) {
        this.discovered.add(key);
        ctx.metrics.discoveries.inc({ datacenter: p.sourceDc });
        ctx.logger.info({ datacenter: p.sourceDc, topic: p.sourceTopic }, "application discovered");
      }
    }

    // Stop pipelines whose rule or source topic went away, and those whose source grew partitions.
    const stops: Promise<void>[] = [];
    for (const task of this.tasks.values()) {
      const next = wanted.get(task.id);
      const src = dcs.find(task.pipeline.sourceDc);
      const sourceReachable = src?.reachable ?? false;
      if (!next) {
        // Keep a pipeline whose source datacenter is only unreachable: its consumer retries by itself.
        if (sourceReachable || !names.has(task.pipeline.sourceDc))
          stops.push(this.stopPipeline(task, "no longer planned"));
      } else if (JSON.stringify(next) !== JSON.stringify(task.pipeline)) {
        stops.push(this.stopPipeline(task, "rule changed"));
      } else if ((src?.topics.get(task.pipeline.sourceTopic) ?? 0) > task.sourcePartitions) {
        stops.push(this.stopPipeline(task, "source partitions added"));
      } else if (task.state === "failed") {
        stops.push(this.stopPipeline(task, "restart after failure"));
      }
    }
    await Promise.all(stops);

    const starts: Promise<void>[] = [];
    for (const p of plan) {
      if (this.tasks.has(p.id)) continue;
      if (!dcs.get(p.sourceDc).reachable || !dcs.get(p.destinationDc).reachable) continue;
      starts.push(this.startPipeline(p));
    }
    await Promise.all(starts);
    ctx.metrics.pipelines.set([...this.tasks.values()].filter((t) => t.state === "running").length);
    this.rounds++;
    this.lastRoundAt = Date.now();
    this.lastRoundMs = this.lastRoundAt - started;
  }

  private async startPipeline(p: Pipeline): Promise<void> {
    const task: PipelineTask = new PipelineTask(this.ctx, this.dcs, p, () => this.forget(task));
    this.tasks.set(p.id, task);
    if ((await task.start()) === "waiting") this.forget(task);
  }

  private forget(task: PipelineTask): void {
    if (this.tasks.get(task.id) === task) this.tasks.delete(task.id);
  }
}
