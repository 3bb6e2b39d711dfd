/**
 * One view of several engines of the same replicator (worker threads, ./pool.ts): their health and
 * status merged. Pure functions, no I/O.
 *
 * The engines share the work through Kafka consumer groups: every engine runs every pipeline, and each
 * source partition belongs to one engine at a time. Totals add up; per-partition progress comes from the
 * engine that got furthest (the current owner; an engine that lost the partition in a rebalance keeps
 * its older figures).
 */
import type { Health, PipelineStatus, ReplicatorStatus } from "./engine/types.js";
import { ReplicatorError } from "./errors.js";

export type { Health };

/** Healthy when every engine is; a datacenter is reachable when every engine reaches it. */
export function mergeHealth(parts: Health[]): Health {
  const byName = new Map<string, Health["datacenters"][number]>();
  for (const part of parts) {
    for (const dc of part.datacenters) {
      const seen = byName.get(dc.name);
      if (!seen) byName.set(dc.name, { ...dc });
      else if (seen.reachable && !dc.reachable) byName.set(dc.name, { ...dc });
    }
  }
  const stopped = parts.flatMap((p) => p.stopped ?? []);
  return {
    ok: parts.length > 0 && parts.every((p) => p.ok),
    datacenters: [...byName.values()],
    ...(stopped.length > 0 ? { stopped } : {}),
  };
}

function laterOffset(a: string, b: string): boolean {
  return BigInt(a) > BigInt(b);
}

function mergePipeline(a: PipelineStatus, b: PipelineStatus): PipelineStatus {
  const partitions = new Map(a.partitions.map((p) => [p.partition, p]));
  for (const p of b.partitions) {
    const seen = partitions.get(p.partition);
    if (!seen || laterOffset(p.committedOffset, seen.committedOffset)) partitions.set(p.partition, p);
  }
  // A pipeline is as far along as its least advanced engine: "failed" or "starting" anywhere shows.
  const rank = (state: string) => (state === "running" ? 0 : state === "stopping" ? 1 : 2);
  const worse = rank(b.state) > rank(a.state) ? b : a;
  const error = a.error ?? b.error;
  return {
    ...a,
    state: worse.state,
    ...(error !== undefined ? { error } : {}),
    source: { ...a.source, partitions: Math.max(a.source.partitions, b.source.partitions) },
    destination: {
      ...a.destination,
      partitions: Math.max(a.destination.partitions, b.destination.partitions),
    },
    records: a.records + b.records,
    bytes: a.bytes + b.bytes,
    skipped: a.skipped + b.skipped,
    assigned: [...new Set([...a.assigned, ...b.assigned])].sort((x, y) => x - y),
    partitions: [...partitions.values()].sort((x, y) => x.partition - y.partition),
  };
}

/** The status of engines that run the same configuration, as if they were one replicator. */
export function mergeStatus(parts: ReplicatorStatus[]): ReplicatorStatus & { workers: number } {
  const [first, ...rest] = parts;
  if (!first) throw new ReplicatorError("NO_STATUS", "mergeStatus needs at least one status");
  const pipelines = new Map(first.pipelines.map((p) => [p.id, p]));
  const applications = new Map(first.applications.map((a) => [`${a.datacenter}\u0000${a.topic}`, a]));
  let rounds = first.discovery.rounds;
  for (const part of rest) {
    rounds = Math.max(rounds, part.discovery.rounds);
    for (const p of part.pipelines) {
      const seen = pipelines.get(p.id);
      pipelines.set(p.id, seen ? mergePipeline(seen, p) : p);
    }
    for (const a of part.applications) applications.set(`${a.datacenter}\u0000${a.topic}`, a);
  }
  const health = mergeHealth(parts.map((p) => ({ ok: p.running, datacenters: p.datacenters })));
  return {
    ...first,
    running: parts.every((p) => p.running),
    leader: parts.some((p) => p.leader),
    workers: parts.length,
    discovery: { ...first.discovery, rounds },
    datacenters: first.datacenters.map((dc) => ({
      ...dc,
      ...health.datacenters.find((d) => d.name === dc.name),
    })),
    applications: [...applications.values()],
    pipelines: [...pipelines.values()],
  };
}
