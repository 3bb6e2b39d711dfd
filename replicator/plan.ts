/**
 * The pure planning step: from the topics discovered in each datacenter and the configuration,
 * the set of pipelines (source dc, source topic) → (destination dc, target topic) to run.
 */
import {
  INTERNAL_TOPIC,
  OWN_TOPIC_PREFIX,
  isDiscoverable,
  matchesAny,
  type ModelName,
  type ReplicatorConfig,
} from "./config.js";
import type { Registration } from "./registry.js";
import {
  createPolicy,
  readProvenance,
  routesTo,
  type Headers,
  type NamingPolicyName,
  type ReplicationPolicy,
} from "./policy.js";

export interface Pipeline {
  /** Stable identity: `<src>/<topic>-><dst>/<target>`. */
  id: string;
  sourceDc: string;
  sourceTopic: string;
  destinationDc: string;
  targetTopic: string;
  model: ModelName;
  /** Index of the replication rule that produced the pipeline; -1 for a registered application. */
  rule: number;
  /** Logical group name (groups model). */
  group?: string;
  /** Routing model: destinations for records without a destinations header. */
  defaultDestinations?: string[];
  naming: NamingPolicyName;
}

/** Topics present in each datacenter, by datacenter name. */
export type Discovered = ReadonlyMap<string, ReadonlySet<string>> | Record<string, readonly string[]>;

function topicsOf(discovered: Discovered, dc: string): string[] {
  if (discovered instanceof Map) return [...(discovered.get(dc) ?? [])];
  return [...((discovered as Record<string, readonly string[]>)[dc] ?? [])];
}

export function pipelineId(
  p: Pick<Pipeline, "sourceDc" | "sourceTopic" | "destinationDc" | "targetTopic">,
): string {
  return `${p.sourceDc}/${p.sourceTopic}->${p.destinationDc}/${p.targetTopic}`;
}

export function policyFor(config: ReplicatorConfig, naming: NamingPolicyName): ReplicationPolicy {
  return createPolicy(
    naming,
    config.datacenters.map((d) => d.name),
  );
}

/** Registered applications: datacenter → topic → registration. */
export type Registrations = ReadonlyMap<string, ReadonlyMap<string, Registration>>;

/**
 * Registered applications come first (an explicit announcement wins over a pattern rule) and bypass the
 * discovery include/exclude patterns; then the rules in configuration order. For one (source, topic,
 * destination) the first match wins.
 */
export function planPipelines(
  discovered: Discovered,
  config: ReplicatorConfig,
  registrations: Registrations = new Map(),
): Pipeline[] {
  const out = new Map<string, Pipeline>();
  const seen = new Set<string>(); // (src, topic, dst): the first rule wins
  const add = (
    rule: number,
    model: ModelName,
    naming: NamingPolicyName,
    src: string,
    topic: string,
    dst: string,
    extra: Partial<Pipeline> = {},
  ) => {
    if (src === dst) return;
    if (config.replicator.datacenter !== undefined && dst !== config.replicator.datacenter) return;
    const key = `${src}\u0000${topic}\u0000${dst}`;
    if (seen.has(key)) return;
    const policy = policyFor(config, naming);
    const targetTopic = policy.formatTargetTopic(src, topic);
    seen.add(key);
    const p: Pipeline = {
      id: "",
      sourceDc: src,
      sourceTopic: topic,
      destinationDc: dst,
      targetTopic,
      model,
      rule,
      naming,
      ...extra,
    };
    p.id = pipelineId(p);
    out.set(p.id, p);
  };
  /** Local application topics of `dc` selected by `patterns` under `naming`. */
  const candidates = (dc: string, patterns: readonly string[], naming: NamingPolicyName) => {
    const policy = policyFor(config, naming);
    return topicsOf(discovered, dc)
      .filter(
        (t) => isDiscoverable(t, config.discovery) && matchesAny(patterns, t) && !policy.isRemoteTopic(t),
      )
      .sort();
  };

  const known = new Set(config.datacenters.map((d) => d.name));
  for (const [dc, regs] of [...registrations].sort(([a], [b]) => a.localeCompare(b))) {
    const present = new Set(topicsOf(discovered, dc));
    for (const [topic, reg] of [...regs].sort(([a], [b]) => a.localeCompare(b))) {
      if (!present.has(topic) || INTERNAL_TOPIC.test(topic) || topic.startsWith(OWN_TOPIC_PREFIX)) continue;
      const naming = reg.naming ?? config.naming;
      if (policyFor(config, naming).isRemoteTopic(topic)) continue;
      for (const dst of reg.destinations) {
        if (!known.has(dst)) continue;
        add(-1, reg.model, naming, dc, topic, dst, {
          ...(reg.group !== undefined ? { group: reg.group } : {}),
          ...(reg.model === "routing" ? { defaultDestinations: reg.defaultDestinations } : {}),
        });
      }
    }
  }

  config.replication.forEach((rule, i) => {
    switch (rule.model) {
      case "full":
      case "routing": {
        const naming = rule.naming ?? config.naming;
        for (const src of rule.sources)
          for (const topic of candidates(src, rule.topics, naming))
            for (const dst of rule.destinations)
              add(
                i,
                rule.model,
                naming,
                src,
                topic,
                dst,
                rule.model === "routing" ? { defaultDestinations: rule.defaultDestinations } : {},
              );
        break;
      }
      case "groups": {
        const naming = rule.naming ?? config.naming;
        for (const src of rule.sources)
          for (const topic of candidates(src, [".*"], naming)) {
            const group = rule.groups.find((g) => matchesAny(g.topics, topic));
            if (!group) continue;
            for (const dst of group.destinations)
              add(i, "groups", naming, src, topic, dst, { group: group.name });
          }
        break;
      }
      case "merge":
        // Streams of the same name from every source merge into one stream (same name) per destination.
        for (const src of rule.sources)
          for (const topic of candidates(src, rule.topics, "identity"))
            for (const dst of rule.destinations) add(i, "merge", "identity", src, topic, dst);
        break;
      case "active-active": {
        const naming = rule.naming ?? config.naming;
        for (const src of rule.datacenters)
          for (const topic of candidates(src, rule.topics, naming))
            for (const dst of rule.datacenters) add(i, "active-active", naming, src, topic, dst);
        break;
      }
    }
  });
  return [...out.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export type RecordDecision = "send" | "cycle" | "not-local" | "unrouted";

/**
 * Whether a record read by a pipeline is sent to its destination:
 * - never when it would close a cycle (it was produced in, or passed through, the destination);
 * - active-active: only records produced locally (every datacenter receives each record directly from
 *   its origin, so forwarding replicas would duplicate them);
 * - routing: only when its destinations header (or the rule's default) names the destination.
 */
export function decideRecord(
  pipeline: Pipeline,
  policy: ReplicationPolicy,
  headers: Headers | undefined,
): RecordDecision {
  if (policy.isCycle(headers, pipeline.sourceTopic, pipeline.destinationDc)) return "cycle";
  if (pipeline.model === "active-active" && readProvenance(headers) !== undefined) return "not-local";
  if (
    pipeline.model === "routing" &&
    !routesTo(headers, pipeline.destinationDc, pipeline.defaultDestinations ?? [])
  ) {
    return "unrouted";
  }
  return "send";
}
