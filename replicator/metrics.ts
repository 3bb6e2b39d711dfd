/** Prometheus metrics of one replicator (own registry, so several replicators can share a process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface ReplicatorMetrics {
  registry: Registry;
  records: Counter<"source" | "destination" | "topic">;
  bytes: Counter<"source" | "destination" | "topic">;
  skipped: Counter<"source" | "destination" | "topic" | "reason">;
  chunked: Counter<"destination">;
  latency: Histogram<"destination">;
  discoveries: Counter<"datacenter">;
  errors: Counter<"kind">;
  /** Records the destination refused, by reason and what the error policy did (stopped, dead-lettered). */
  recordsFailed: Counter<"pipeline" | "reason" | "action">;
  pipelines: Gauge;
  /** At-least-once: record bytes read and not yet acknowledged, per destination (back-pressure). */
  inFlightBytes: Gauge<"destination">;
  lag: Gauge<"pipeline" | "partition">;
  /** Called when the lag gauge is collected (the engine refreshes lag from the source high watermarks). */
  onCollectLag?: () => Promise<void>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): ReplicatorMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "lp_replicator_" });
  const registers = [registry];
  const metrics: ReplicatorMetrics = {
    registry,
    records: new Counter({
      name: "lp_replicator_records_total",
      help: "Records written to a destination (acknowledged)",
      labelNames: ["source", "destination", "topic"],
      registers,
    }),
    bytes: new Counter({
      name: "lp_replicator_bytes_total",
      help: "Key + value bytes written to a destination (acknowledged)",
      labelNames: ["source", "destination", "topic"],
      registers,
    }),
    skipped: new Counter({
      name: "lp_replicator_records_skipped_total",
      help: "Records read but not sent, by reason (cycle, not-local, unrouted)",
      labelNames: ["source", "destination", "topic", "reason"],
      registers,
    }),
    chunked: new Counter({
      name: "lp_replicator_records_chunked_total",
      help: "Records split into chunks because they exceed the destination's limit",
      labelNames: ["destination"],
      registers,
    }),
    latency: new Histogram({
      name: "lp_replicator_replication_latency_seconds",
      help: "Destination acknowledgement time minus record timestamp",
      labelNames: ["destination"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    discoveries: new Counter({
      name: "lp_replicator_discoveries_total",
      help: "Application topics discovered",
      labelNames: ["datacenter"],
      // Every engine of a pool (./pool.ts) discovers the same topics.
      aggregator: "max",
      registers,
    }),
    errors: new Counter({
      name: "lp_replicator_errors_total",
      help: "Errors by kind",
      labelNames: ["kind"],
      registers,
    }),
    recordsFailed: new Counter({
      name: "lp_replicator_records_failed_total",
      help: "Records the destination refused, by pipeline, reason and action (stopped, dead-lettered)",
      labelNames: ["pipeline", "reason", "action"],
      registers,
    }),
    pipelines: new Gauge({
      name: "lp_replicator_pipelines",
      help: "Running pipelines",
      // Every engine of a pool (./pool.ts) runs every pipeline, on its share of the partitions.
      aggregator: "max",
      registers,
    }),
    inFlightBytes: new Gauge({
      name: "lp_replicator_in_flight_bytes",
      help: "At-least-once: record bytes read and not yet acknowledged by the destination (bounded by replicator.maxInFlightBytes per engine)",
      labelNames: ["destination"],
      aggregator: "sum",
      registers,
    }),
    lag: new Gauge({
      name: "lp_replicator_lag_records",
      help: "Source high watermark minus next offset to replicate, per pipeline and partition",
      labelNames: ["pipeline", "partition"],
      // In a pool, the engine that owns the partition knows the furthest position: the smallest lag.
      aggregator: "min",
      registers,
      async collect() {
        await metrics.onCollectLag?.();
      },
    }),
  };
  return metrics;
}
