/**
 * Provenance headers, topic naming and loop (cycle) detection.
 *
 * Every replicated record carries where it was first produced (origin datacenter, topic, partition,
 * offset) and the path of datacenters it went through. A ReplicationPolicy owns the target topic name
 * and decides whether sending a record to a destination would close a cycle.
 */
export const HEADERS = {
  originDc: "lp.origin.dc",
  originTopic: "lp.origin.topic",
  originPartition: "lp.origin.partition",
  originOffset: "lp.origin.offset",
  /** Comma-separated datacenters the record has been in, origin first. */
  path: "lp.path",
  /** Per-record destinations for the routing model: comma-separated datacenter names. */
  destinations: "lp.destinations",
} as const;

/** The naming policies of target topics: `identity` keeps the name, `prefixed` prepends the source datacenter. */
export const NAMING_POLICIES = ["identity", "prefixed"] as const;
export type NamingPolicyName = (typeof NAMING_POLICIES)[number];

/** A header as kafkajs hands it out; null is a header without a value (Kafka allows it). */
export type HeaderValue = Buffer | string | null | (Buffer | string | null)[] | undefined;
export type Headers = Record<string, HeaderValue>;

export interface Provenance {
  originDc: string;
  originTopic: string;
  originPartition: number;
  originOffset: string;
  path: string[];
}

/** Reads a header as a string (the first value when repeated). */
export function headerString(headers: Headers | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined || first === null) return undefined;
  return typeof first === "string" ? first : first.toString("utf8");
}

/** The provenance of a record, or undefined when it was produced locally (never replicated). */
export function readProvenance(headers: Headers | undefined): Provenance | undefined {
  const originDc = headerString(headers, HEADERS.originDc);
  if (originDc === undefined) return undefined;
  const path = (headerString(headers, HEADERS.path) ?? originDc).split(",").filter((s) => s !== "");
  return {
    originDc,
    originTopic: headerString(headers, HEADERS.originTopic) ?? "",
    originPartition: Number(headerString(headers, HEADERS.originPartition) ?? -1),
    originOffset: headerString(headers, HEADERS.originOffset) ?? "",
    path,
  };
}

/**
 * Headers for the copy of a record read at (sourceDc, topic, partition, offset): the original headers,
 * the origin kept if the record was itself replicated, and the source datacenter appended to the path.
 */
export function withProvenance(
  headers: Headers | undefined,
  source: { dc: string; topic: string; partition: number; offset: string },
  provenance: readonly (readonly [string, string])[] = provenanceHeaders(headers, source),
): Headers {
  const out: Headers = { ...(headers ?? {}) };
  for (const [name, value] of provenance) out[name] = value;
  return out;
}

/** The provenance headers {@link withProvenance} sets, in order (for an ordered header list). */
export function provenanceHeaders(
  headers: Headers | undefined,
  source: { dc: string; topic: string; partition: number; offset: string },
): [string, string][] {
  const prior = readProvenance(headers);
  if (prior) return [[HEADERS.path, [...prior.path, source.dc].join(",")]];
  return [
    [HEADERS.originDc, source.dc],
    [HEADERS.originTopic, source.topic],
    [HEADERS.originPartition, String(source.partition)],
    [HEADERS.originOffset, source.offset],
    [HEADERS.path, source.dc],
  ];
}

export interface ReplicationPolicy {
  readonly name: NamingPolicyName;
  /** The name of the copy in a destination of `topic` read in datacenter `sourceDc`. */
  formatTargetTopic(sourceDc: string, topic: string): string;
  /** The datacenter a topic name says it was replicated from, or undefined for a local topic. */
  originOf(topic: string): string | undefined;
  /** Whether a topic is itself a replica (never a replication source under this policy). */
  isRemoteTopic(topic: string): boolean;
  /**
   * Whether sending a record (its headers, read from `topic`) to `destinationDc` would close a cycle:
   * the record was produced in, or already passed through, the destination.
   */
  isCycle(headers: Headers | undefined, topic: string, destinationDc: string): boolean;
}

function headerCycle(headers: Headers | undefined, destinationDc: string): boolean {
  const prov = readProvenance(headers);
  return prov !== undefined && (prov.originDc === destinationDc || prov.path.includes(destinationDc));
}

export class IdentityReplicationPolicy implements ReplicationPolicy {
  readonly name = "identity" as const;
  formatTargetTopic(_sourceDc: string, topic: string): string {
    return topic;
  }
  originOf(_topic: string): string | undefined {
    return undefined;
  }
  isRemoteTopic(_topic: string): boolean {
    return false;
  }
  isCycle(headers: Headers | undefined, _topic: string, destinationDc: string): boolean {
    return headerCycle(headers, destinationDc);
  }
}

/** MirrorMaker 2's default naming: `<origin>.<topic>`. Datacenter names contain no '.'. */
export class PrefixedReplicationPolicy implements ReplicationPolicy {
  readonly name = "prefixed" as const;
  constructor(private readonly datacenters: ReadonlySet<string>) {}
  formatTargetTopic(sourceDc: string, topic: string): string {
    return `${sourceDc}.${topic}`;
  }
  originOf(topic: string): string | undefined {
    const dot = topic.indexOf(".");
    if (dot <= 0) return undefined;
    const prefix = topic.slice(0, dot);
    return this.datacenters.has(prefix) ? prefix : undefined;
  }
  isRemoteTopic(topic: string): boolean {
    return this.originOf(topic) !== undefined;
  }
  isCycle(headers: Headers | undefined, topic: string, destinationDc: string): boolean {
    return this.originOf(topic) === destinationDc || headerCycle(headers, destinationDc);
  }
}

export function createPolicy(name: NamingPolicyName, datacenters: Iterable<string>): ReplicationPolicy {
  return name === "identity"
    ? new IdentityReplicationPolicy()
    : new PrefixedReplicationPolicy(new Set(datacenters));
}

/** Routing model: the destinations a record asks for (header `lp.destinations`), or undefined if none. */
export function routedDestinations(headers: Headers | undefined): string[] | undefined {
  const raw = headerString(headers, HEADERS.destinations);
  if (raw === undefined) return undefined;
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** Whether a record goes to `destinationDc` under a routing rule. */
export function routesTo(
  headers: Headers | undefined,
  destinationDc: string,
  defaults: readonly string[],
): boolean {
  const wanted = routedDestinations(headers) ?? defaults;
  return wanted.includes(destinationDc);
}
