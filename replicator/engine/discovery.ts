/**
 * The planning round (the MirrorMaker 2 `MirrorSourceConnector` role): list the topics of every
 * datacenter, read the registrations, plan the pipelines (../plan.ts, pure) and reconcile the running
 * ones — start the new, stop those whose rule or source went away or changed, restart the failed. The
 * pipelines of one datacenter pair share its link (./link.ts): the round prepares the new ones' targets
 * together (./targets.ts), then each link reconciles its consumer with its topics once.
 */
import { planPipelines, type Pipeline } from "../plan.js";
import type { Registration } from "../registry.js";
import { sleep } from "../../common/time.js";
import { ReplicatorError } from "../errors.js";
import type { Datacenters } from "./datacenters.js";
import type { Election } from "./election.js";
import { Link } from "./link.js";
import { PipelineTask } from "./pipeline.js";
import { RegistryReader } from "./registry-reader.js";
import { ensureTargets } from "./targets.js";
import { errorFields } from "../../common/log.js";
import type { EngineContext } from "./types.js";

export class Discovery {
  /** The pipelines of this engine, by id. */
  readonly tasks = new Map<string, PipelineTask>();
  /** The datacenter pairs at work, by `Link.key`. */
  readonly links = new Map<string, Link>();
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

  /** Stops every pipeline and link of a datacenter (its configuration changed); the next round restarts them. */
  async stopDatacenter(name: string, reason: string): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    const tasks = [...this.tasks.values()].filter(
      (t) => t.pipeline.sourceDc === name || t.pipeline.destinationDc === name,
    );
    await Promise.all(tasks.map((task) => this.stopPipeline(task, reason)));
    await Promise.all(
      [...this.links.values()]
        .filter((l) => l.sourceDc === name || l.destinationDc === name)
        .map((link) => this.stopLink(link, reason)),
    );
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.tasks.values()].map((task) => this.stopPipeline(task, reason)));
    await Promise.all([...this.links.values()].map((link) => this.stopLink(link, reason)));
  }

  private async stopLink(link: Link, reason: string): Promise<void> {
    await link.stop(reason);
    if (this.links.get(Link.key(link.sourceDc, link.destinationDc)) === link)
      this.links.delete(Link.key(link.sourceDc, link.destinationDc));
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

    const byLink = new Map<string, Pipeline[]>();
    for (const p of plan) {
      if (this.tasks.has(p.id)) continue;
      if (!dcs.get(p.sourceDc).reachable || !dcs.get(p.destinationDc).reachable) continue;
      const key = Link.key(p.sourceDc, p.destinationDc);
      const pipelines = byLink.get(key);
      if (pipelines) pipelines.push(p);
      else byLink.set(key, [p]); // not a copy per pipeline: 10,000 new ones were 5×10^7 copies a round
    }
    await Promise.all([...byLink.values()].map((pipelines) => this.startPipelines(pipelines)));
    // Every link reads the topics of its ready pipelines (a restart of its consumer when they changed).
    await Promise.all([...this.links.values()].map((link) => link.sync()));
    for (const [key, link] of this.links) {
      if (link.empty) {
        this.links.delete(key);
        await link.stop("no pipeline left");
      }
    }
    ctx.metrics.pipelines.set([...this.tasks.values()].filter((t) => t.state === "running").length);
    this.rounds++;
    this.lastRoundAt = Date.now();
    this.lastRoundMs = this.lastRoundAt - started;
  }

  /** Prepares the targets of new pipelines of one datacenter pair together; their link reads them next. */
  private async startPipelines(pipelines: Pipeline[]): Promise<void> {
    const { ctx, dcs } = this;
    const first = pipelines[0]!;
    const key = Link.key(first.sourceDc, first.destinationDc);
    let link = this.links.get(key);
    if (!link) {
      link = new Link(ctx, dcs, first.sourceDc, first.destinationDc);
      this.links.set(key, link);
    }
    link.warmUp();
    let sizes: Awaited<ReturnType<typeof ensureTargets>>;
    try {
      sizes = await ensureTargets(ctx, pipelines, dcs.get(first.sourceDc), dcs.get(first.destinationDc));
    } catch (err) {
      ctx.metrics.errors.inc({ kind: "pipeline-start" });
      ctx.logger.warn(
        {
          source: first.sourceDc,
          destination: first.destinationDc,
          pipelines: pipelines.length,
          err: errorFields(err),
        },
        "target topics not prepared; retrying next round",
      );
      return;
    }
    await Promise.all(
      pipelines.map(async (p) => {
        const result = sizes.get(p.id);
        if (!result) return;
        if (
          result instanceof ReplicatorError &&
          (result.code === "WAITING_FOR_LEADER" || result.code === "TARGET_NOT_READY")
        ) {
          // Not an error: the leader creates the target, or the destination is still setting it up; the
          // next round tries again.
          ctx.logger.debug({ pipeline: p.id, err: errorFields(result) }, "pipeline waits for its target");
          return;
        }
        const task: PipelineTask = new PipelineTask(ctx, dcs, p, link, () => this.forget(task));
        this.tasks.set(p.id, task);
        link.add(task);
        if (result instanceof ReplicatorError) {
          ctx.metrics.errors.inc({ kind: "pipeline-start" });
          task.log.warn({ err: errorFields(result) }, "pipeline failed to start; retrying next round");
          task.fail(result);
          return;
        }
        await task.prepare(result);
      }),
    );
  }

  private forget(task: PipelineTask): void {
    if (this.tasks.get(task.id) === task) this.tasks.delete(task.id);
  }
}
