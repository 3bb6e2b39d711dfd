/**
 * Replicator configuration: one zod schema, YAML or JSON input, errors that name the field
 * (e.g. `replication[0].destinations[1]: unknown datacenter 'dc9'`).
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { fieldPath } from "../common/errors.js";
import { NAMING_POLICIES } from "./policy.js";
import { kafkaSecuritySchema, resolveKafkaSecurity, type ResolvedKafkaSecurity } from "../kafka/security.js";
import { KafkaError } from "../kafka/errors.js";

/** Topics whose name starts with this prefix belong to the replicator itself and are never replicated. */
export const OWN_TOPIC_PREFIX = "lp.replicator.";
/** Kafka-internal topics (`__consumer_offsets`, `__transaction_state`, ...) are never replicated. */
export const INTERNAL_TOPIC = /^__/;

const regex = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (err) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `invalid regular expression '${source}': ${(err as Error).message}`,
    });
  }
});
const dcName = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, "datacenter names use letters, digits, '_' and '-' only (no '.')");
const broker = z.string().regex(/^[^\s:]+:\d{1,5}$/, "a broker is host:port");
const topics = z.array(regex).min(1).default([".*"]);

const datacenterSchema = z
  .object({
    name: dcName,
    brokers: z.array(broker).min(1),
    clientId: z.string().min(1).optional(),
    connectionTimeoutMs: z.number().int().positive().default(3000),
    requestTimeoutMs: z.number().int().positive().default(30000),
    /** TLS and SASL of the cluster (../kafka/security.ts); secrets by `{ env }` or `{ file }` reference. */
    security: kafkaSecuritySchema.optional(),
  })
  .strict();

/**
 * The kafkajs security options of datacenter `index`, references resolved now (client creation, and the
 * CLI's check at load). An unset variable or unreadable file is a ConfigError naming the field
 * (`datacenters[0].security.sasl.password: environment variable DC1_PASSWORD is not set`).
 */
export function datacenterSecurity(
  config: { datacenters: readonly { security?: z.infer<typeof kafkaSecuritySchema> }[] },
  index: number,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedKafkaSecurity {
  const field = fieldPath(["datacenters", index, "security"]);
  try {
    return resolveKafkaSecurity(config.datacenters[index]?.security, field, { env });
  } catch (err) {
    if (!(err instanceof KafkaError)) throw err;
    throw new ConfigError([err.message], { cause: err, ...(err.field ? { field: err.field } : {}) });
  }
}

const namingSchema = z.enum(NAMING_POLICIES);
/** What happens to a record the destination cannot take (docs/replicator.md "Records that cannot be written"). */
export const ERROR_POLICIES = ["stop", "dead-letter"] as const;
const errorPolicySchema = z.enum(ERROR_POLICIES);
/** Kafka topic names: letters, digits, '.', '_' and '-', at most 249. */
const topicName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, "a topic name uses letters, digits, '.', '_' and '-'");
/** Per rule: the error policy (default: replicator.errorPolicy) and the dead-letter topic's name. */
const ruleErrors = { errorPolicy: errorPolicySchema.optional(), deadLetterTopic: topicName.optional() };

const fullRule = z
  .object({
    model: z.literal("full"),
    name: z.string().optional(),
    topics,
    sources: z.array(z.string()).min(1),
    destinations: z.array(z.string()).min(1),
    naming: namingSchema.optional(),
    ...ruleErrors,
  })
  .strict();
const groupsRule = z
  .object({
    model: z.literal("groups"),
    name: z.string().optional(),
    sources: z.array(z.string()).min(1),
    groups: z
      .array(z.object({ name: z.string().min(1), topics, destinations: z.array(z.string()).min(1) }).strict())
      .min(1),
    naming: namingSchema.optional(),
    ...ruleErrors,
  })
  .strict();
const routingRule = z
  .object({
    model: z.literal("routing"),
    name: z.string().optional(),
    topics,
    sources: z.array(z.string()).min(1),
    /** The datacenters a record may be routed to (its destinations header selects among them). */
    destinations: z.array(z.string()).min(1),
    /** Where records without a destinations header go (default: nowhere; they are counted as unrouted). */
    defaultDestinations: z.array(z.string()).default([]),
    naming: namingSchema.optional(),
    ...ruleErrors,
  })
  .strict();
const mergeRule = z
  .object({
    model: z.literal("merge"),
    name: z.string().optional(),
    topics,
    sources: z.array(z.string()).min(2),
    destinations: z.array(z.string()).min(1),
    ...ruleErrors,
  })
  .strict();
const activeActiveRule = z
  .object({
    model: z.literal("active-active"),
    name: z.string().optional(),
    topics,
    datacenters: z.array(z.string()).min(2),
    naming: namingSchema.optional(),
    ...ruleErrors,
  })
  .strict();

const ruleSchema = z.discriminatedUnion("model", [
  fullRule,
  groupsRule,
  routingRule,
  mergeRule,
  activeActiveRule,
]);

export const configSchema = z
  .object({
    replicator: z
      .object({
        /** Stable id: consumer groups are named after it, so a restarted replicator resumes where it stopped. */
        id: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/)
          .default("replicator"),
        /** When set, this replicator only runs pipelines whose destination is this datacenter. */
        datacenter: z.string().optional(),
        admin: z
          .object({
            host: z.string().default("127.0.0.1"),
            port: z.number().int().min(0).max(65535).default(0),
          })
          .strict()
          .default({}),
        /**
         * At-least-once back-pressure: record bytes read and not yet acknowledged per destination datacenter
         * and engine, over all its topics; the fetching waits beyond it (a slow destination holds at most
         * this much in memory). Exactly-once is bounded by the fetched batches (one fetch's slices per transaction).
         */
        maxInFlightBytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(64 * 1024 * 1024),
        /** Records larger than this (or than the target topic's max.message.bytes) are chunked. */
        maxRecordBytes: z.number().int().min(1024).optional(),
        /** A member that stops heartbeating leaves the group after this long (6 s: the broker's minimum by default). */
        sessionTimeoutMs: z.number().int().min(6000).default(6000),
        /**
         * How long a rebalance waits for the members to rejoin; one that has not (it died without leaving)
         * is dropped then. Bounds the wait for a first assignment after a crash and restart (the dead
         * members of the killed process are still in the group until their session times out).
         */
        rebalanceTimeoutMs: z.number().int().min(1000).max(300_000).default(3000),
        /**
         * At-least-once: acknowledged source positions are committed this long after an acknowledgement,
         * coalesced (one commit at a time). Longer means fewer commits and more re-reads after a crash; a
         * rebalance commits at once whatever the interval.
         */
        commitIntervalMs: z.number().int().min(0).max(60_000).default(50),
        /**
         * at-least-once (default): commit source positions after the destination acknowledged.
         * exactly-once: records and source positions written in one destination transaction.
         */
        delivery: z.enum(["at-least-once", "exactly-once"]).default("at-least-once"),
        /**
         * A record the destination refuses (too large, invalid) under rules without their own errorPolicy
         * and for registered applications: "stop" its partition (default; /healthz and /status name it)
         * or "dead-letter" it (to `lp.replicator.dlq.<source dc>.<topic>` in the destination) and go on.
         */
        errorPolicy: errorPolicySchema.default("stop"),
        /** Elect one leader among the replicators of this id (it alone creates target topics). */
        leaderElection: z.boolean().default(true),
        /**
         * Source partitions of one datacenter pair handed over at once, each in order (at-least-once only
         * waits for a send when its partition's lane is full; under exactly-once the slices replicated
         * together share one destination transaction). "auto": every partition the pair's consumer reads
         * (kafkajs fetches again only after the batches of a fetch are handed over, so the fetch size bounds
         * the memory, not this). A number caps it: with 8, 1,000 topics took 125 transactions per fetch.
         */
        partitionConcurrency: z
          .union([z.number().int().min(1).max(100_000), z.literal("auto")])
          .default("auto"),
        /**
         * Replication engines run in worker threads of this process, sharing the partitions through each
         * datacenter pair's consumer group (./pool.ts). "auto": one per CPU core, at most 4. Engine k of n
         * owns the partitions p of topic t with (hash(t) + p) mod n = k; under exactly-once strictly, with
         * its own transactional ids (./assignment.ts). A change takes effect after a restart.
         */
        workers: z.union([z.literal("auto"), z.number().int().min(1).max(16)]).default("auto"),
      })
      .strict()
      .default({}),
    datacenters: z.array(datacenterSchema).min(1),
    discovery: z
      .object({
        intervalMs: z.number().int().min(100).default(1000),
        include: z.array(regex).default([".*"]),
        exclude: z.array(regex).default([]),
      })
      .strict()
      .default({}),
    naming: namingSchema.default("identity"),
    /** Discovery by registration: applications announce streams on each datacenter's registry topic. */
    registry: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({}),
    replication: z.array(ruleSchema).default([]),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const known = new Set<string>();
    cfg.datacenters.forEach((dc, i) => {
      if (known.has(dc.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["datacenters", i, "name"],
          message: `duplicate datacenter '${dc.name}'`,
        });
      }
      known.add(dc.name);
    });
    const checkDcs = (names: string[], path: (string | number)[]) =>
      names.forEach((name, j) => {
        if (!known.has(name)) {
          ctx.addIssue({ code: "custom", path: [...path, j], message: `unknown datacenter '${name}'` });
        }
      });
    const checkDisjoint = (sources: string[], dests: string[], path: (string | number)[]) =>
      dests.forEach((name, j) => {
        if (sources.includes(name)) {
          ctx.addIssue({
            code: "custom",
            path: [...path, j],
            message: `'${name}' is also a source (use model active-active for bidirectional replication)`,
          });
        }
      });
    if (cfg.replication.length === 0 && !cfg.registry.enabled) {
      ctx.addIssue({
        code: "custom",
        path: ["replication"],
        message: "no replication rule and the registry is disabled: nothing to replicate",
      });
    }
    if (cfg.replicator.datacenter !== undefined && !known.has(cfg.replicator.datacenter)) {
      ctx.addIssue({
        code: "custom",
        path: ["replicator", "datacenter"],
        message: `unknown datacenter '${cfg.replicator.datacenter}'`,
      });
    }
    cfg.replication.forEach((rule, i) => {
      const at = ["replication", i];
      switch (rule.model) {
        case "full":
        case "merge":
          checkDcs(rule.sources, [...at, "sources"]);
          checkDcs(rule.destinations, [...at, "destinations"]);
          checkDisjoint(rule.sources, rule.destinations, [...at, "destinations"]);
          break;
        case "routing":
          checkDcs(rule.sources, [...at, "sources"]);
          checkDcs(rule.destinations, [...at, "destinations"]);
          checkDisjoint(rule.sources, rule.destinations, [...at, "destinations"]);
          rule.defaultDestinations.forEach((name, j) => {
            if (!rule.destinations.includes(name)) {
              ctx.addIssue({
                code: "custom",
                path: [...at, "defaultDestinations", j],
                message: `'${name}' is not one of the rule's destinations`,
              });
            }
          });
          break;
        case "groups":
          checkDcs(rule.sources, [...at, "sources"]);
          rule.groups.forEach((group, g) => {
            checkDcs(group.destinations, [...at, "groups", g, "destinations"]);
            checkDisjoint(rule.sources, group.destinations, [...at, "groups", g, "destinations"]);
          });
          break;
        case "active-active":
          checkDcs(rule.datacenters, [...at, "datacenters"]);
          if (new Set(rule.datacenters).size !== rule.datacenters.length) {
            ctx.addIssue({ code: "custom", path: [...at, "datacenters"], message: "datacenters repeat" });
          }
          break;
      }
    });
  });

export type ReplicatorConfig = z.infer<typeof configSchema>;
export type ReplicationRule = ReplicatorConfig["replication"][number];
export type DatacenterConfig = ReplicatorConfig["datacenters"][number];
export type ModelName = ReplicationRule["model"];

/** Validates a parsed configuration object; throws ConfigError naming each offending field. */
export function parseConfig(input: unknown): ReplicatorConfig {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  // The one path style (common/errors.ts): `replication[0].destinations[1]`; "(root)" for the whole file.
  const paths = result.error.issues.map((issue) => fieldPath(issue.path) || "(root)");
  const issues = result.error.issues.map((issue, i) => `${paths[i]}: ${issue.message}`);
  throw new ConfigError(issues, {
    cause: result.error,
    ...(paths[0] !== undefined ? { field: paths[0] } : {}),
  });
}

/** Parses YAML (a superset of JSON) configuration text. */
export function parseConfigText(text: string, source = "config"): ReplicatorConfig {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML/JSON: ${(err as Error).message}`], { cause: err });
  }
  return parseConfig(data);
}

export function loadConfigFile(file: string): ReplicatorConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([`${file}: cannot read: ${(err as Error).message}`], { cause: err });
  }
  return parseConfigText(text, file);
}

/** True when a topic is eligible for discovery: not internal, not the replicator's own, included and not excluded. */
export function isDiscoverable(topic: string, discovery: ReplicatorConfig["discovery"]): boolean {
  if (INTERNAL_TOPIC.test(topic) || topic.startsWith(OWN_TOPIC_PREFIX)) return false;
  return matchesAny(discovery.include, topic) && !matchesAny(discovery.exclude, topic);
}

const compiled = new Map<string, RegExp>();
/** Patterns match the whole topic name (as MirrorMaker 2's do): `orders` does not match `my-orders`. */
export function matchesAny(patterns: readonly string[], topic: string): boolean {
  return patterns.some((p) => {
    let re = compiled.get(p);
    if (!re) {
      re = new RegExp(`^(?:${p})$`);
      compiled.set(p, re);
    }
    return re.test(topic);
  });
}

/** Engines (worker threads) to run: `replicator.workers`, with "auto" resolved for `cpus` cores. */
export function resolveWorkers(config: ReplicatorConfig, cpus: number): number {
  const { workers } = config.replicator;
  if (workers === "auto") return Math.max(1, Math.min(4, cpus));
  return workers;
}
