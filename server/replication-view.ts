/**
 * `GET /v1/replication`: the replicators' side of the platform for the dashboard. The browser may only
 * call this service's origin, so the service reads each configured replicator's admin API
 * (`/status` and `/metrics`, replicator/admin.ts) and answers one summary per replicator: its
 * pipelines with their lag, and the replication latency per destination from its histogram.
 */
import type { z } from "zod";
import type { DashboardConfig } from "./config.js";
import type {
  latencySummarySchema,
  pipelineSummarySchema,
  replicationReportSchema,
  replicatorSummarySchema,
} from "./responses.js";

export type PipelineSummary = z.infer<typeof pipelineSummarySchema>;
export type LatencySummary = z.infer<typeof latencySummarySchema>;
export type ReplicatorSummary = z.infer<typeof replicatorSummarySchema>;
export type ReplicationReport = z.infer<typeof replicationReportSchema>;

interface StatusDoc {
  id?: unknown;
  running?: unknown;
  leader?: unknown;
  discovery?: { lastRoundAt?: unknown };
  datacenters?: { name?: unknown; reachable?: unknown }[];
  pipelines?: {
    id?: unknown;
    state?: unknown;
    error?: unknown;
    records?: unknown;
    source?: { datacenter?: unknown; topic?: unknown };
    destination?: { datacenter?: unknown; topic?: unknown };
    partitions?: { lag?: unknown }[];
  }[];
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** The parts of a replicator's `/status` the dashboard shows. */
export function summarizeStatus(
  doc: StatusDoc,
  now: number,
): Omit<ReplicatorSummary, "datacenter" | "reachable"> {
  const lastRoundAt = typeof doc.discovery?.lastRoundAt === "string" ? doc.discovery.lastRoundAt : null;
  const at = lastRoundAt ? Date.parse(lastRoundAt) : NaN;
  return {
    id: str(doc.id),
    running: doc.running === true,
    leader: doc.leader === true,
    lastRoundAt,
    lastRoundAgeMs: Number.isNaN(at) ? null : Math.max(0, now - at),
    datacenters: (doc.datacenters ?? []).map((d) => ({ name: str(d.name), reachable: d.reachable === true })),
    pipelines: (doc.pipelines ?? []).map((p) => {
      const lags = (p.partitions ?? []).map((part) => part.lag).filter((l) => typeof l === "number");
      return {
        id: str(p.id),
        source: `${str(p.source?.datacenter)}/${str(p.source?.topic)}`,
        destination: `${str(p.destination?.datacenter)}/${str(p.destination?.topic)}`,
        state: str(p.state),
        ...(typeof p.error === "string" ? { error: p.error } : {}),
        records: num(p.records),
        lag: lags.length > 0 ? lags.reduce((a, b) => a + b, 0) : null,
      };
    }),
  };
}

const LATENCY = "lp_replicator_replication_latency_seconds";

/** Mean and p95 bucket per destination from the replicator's Prometheus text (its latency histogram). */
export function latencyFromMetrics(text: string): LatencySummary[] {
  const byDest = new Map<string, { sum: number; count: number; buckets: [number, number][] }>();
  const line = new RegExp(`^${LATENCY}_(sum|count|bucket)\\{([^}]*)\\}\\s+(\\S+)`);
  for (const raw of text.split("\n")) {
    const m = line.exec(raw);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const dest = labels.destination ?? "";
    const entry = byDest.get(dest) ?? { sum: 0, count: 0, buckets: [] };
    const value = Number(m[3]);
    if (m[1] === "sum") entry.sum = value;
    else if (m[1] === "count") entry.count = value;
    else entry.buckets.push([labels.le === "+Inf" ? Infinity : Number(labels.le), value]);
    byDest.set(dest, entry);
  }
  return [...byDest].map(([destination, e]) => {
    const target = e.count * 0.95;
    const bucket = e.buckets.sort((a, b) => a[0] - b[0]).find(([, cumulative]) => cumulative >= target);
    return {
      destination,
      count: e.count,
      meanSeconds: e.count > 0 ? e.sum / e.count : null,
      p95Seconds: e.count > 0 && bucket && Number.isFinite(bucket[0]) ? bucket[0] : null,
    };
  });
}

/** A short reason a read failed, without the URL (the page shows it to every dashboard user). */
function failure(error: unknown): string {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timeout";
  if (error instanceof SyntaxError) return "invalid /status document";
  return e?.cause?.code ?? "connection failed";
}

async function readOne(
  link: DashboardConfig["replicators"][number],
  timeoutMs: number,
): Promise<ReplicatorSummary> {
  const base = link.url.replace(/\/+$/, "");
  const get = async (p: string): Promise<Response> => {
    const res = await fetch(`${base}${p}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok)
      throw Object.assign(new Error(`HTTP ${res.status}`), { cause: { code: `HTTP ${res.status}` } });
    return res;
  };
  try {
    const [status, metrics] = await Promise.all([
      get("/status").then((r) => r.json() as Promise<StatusDoc>),
      get("/metrics")
        .then((r) => r.text())
        .catch(() => ""),
    ]);
    return {
      datacenter: link.datacenter,
      reachable: true,
      ...summarizeStatus(status, Date.now()),
      latency: latencyFromMetrics(metrics),
    };
  } catch (error) {
    return { datacenter: link.datacenter, reachable: false, error: failure(error) };
  }
}

/** Every configured replicator, read in parallel; one that does not answer is `reachable: false`. */
export async function replicationReport(config: DashboardConfig): Promise<ReplicationReport> {
  const replicators = await Promise.all(config.replicators.map((r) => readOne(r, config.timeoutMs)));
  return { configured: config.replicators.length, replicators };
}

/**
 * The report, read at most once per `maxAgeMs` however many dashboards poll (a replicator's `/status`
 * reads the source end offsets from Kafka); concurrent callers share one read.
 */
export function cachedReplicationReport(
  config: DashboardConfig,
  maxAgeMs = 1000,
): () => Promise<ReplicationReport> {
  let last: { at: number; report: Promise<ReplicationReport> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= maxAgeMs) last = { at: now, report: replicationReport(config) };
    return last.report;
  };
}
