/**
 * Service configuration: one zod schema, validated at start-up, with errors that name the field.
 * Secrets are never part of the config itself: a chain's signer key comes from an environment variable
 * or a keystore file (JSON wallet) whose password comes from an environment variable.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { fieldPath } from "../common/errors.js";
import { KafkaError } from "../kafka/errors.js";
import {
  kafkaSecuritySchema,
  resolveKafkaSecurity,
  type KafkaSecurity,
  type ResolvedKafkaSecurity,
} from "../kafka/security.js";
import { AppError } from "./errors.js";

export const POLICY_NAMES = [
  "round-robin",
  "weighted",
  "least-loaded",
  "lowest-cost",
  "product-pinned",
  "client-preference",
] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/**
 * `platform:read`: read-only over the whole platform — every client's licenses (list, get, verify), the
 * chains and the replication status — the key of the dashboard (`/dashboard`); it writes nothing.
 */
export const SCOPES = ["licenses:write", "licenses:read", "platform:read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte hex address");
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name");

const signerSchema = z.union([
  z.object({ env: envName }).strict(),
  z.object({ keystore: z.string().min(1), passwordEnv: envName }).strict(),
]);

const chainSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes"),
    chainId: z.number().int().positive(),
    rpcUrl: z.string().url(),
    /** The license contract; taken from the deployments file when omitted. */
    contract: address.optional(),
    /** Required in `primary` mode; a read-only replica signs nothing. */
    signer: signerSchema.optional(),
    weight: z.number().int().min(0).max(1000).default(1),
    confirmations: z.number().int().min(1).max(64).default(1),
    enabled: z.boolean().default(true),
    /** Gas per license in a batch; used by the lowest-cost policy and as the gas limit per item. */
    issueGasPerLicense: z.number().int().positive().default(150_000),
    /** Gas a single transaction may use (EIP-7825 caps it at 2^24 from Osaka); batches are split to fit. */
    maxTxGas: z.number().int().min(100_000).default(16_777_216),
  })
  .strict();

const productSchema = z
  .object({
    id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    name: z.string().min(1).max(200),
    /** Default license duration; 0 = perpetual. */
    defaultDurationSeconds: z.number().int().min(0).default(0),
    /** Chains this product may be issued on (ordered by preference); all chains when omitted. */
    chains: z.array(z.number().int().positive()).min(1).optional(),
  })
  .strict();

const apiKeySchema = z
  .object({
    id: z.string().min(1).max(100),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the lowercase hex SHA-256 of the key"),
    scopes: z.array(z.enum(SCOPES)).min(1),
  })
  .strict();

const brokers = z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "host:port")).min(1);
const topicName = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, "a Kafka topic name");

/** License lifecycle events: an outbox in the database, published to a Kafka topic of this datacenter. */
const eventsSchema = z
  .object({
    brokers,
    /** TLS and SASL of this datacenter's Kafka (../kafka/security.ts); secrets by `{ env }`/`{ file }`. */
    security: kafkaSecuritySchema.optional(),
    topic: topicName.default("licensing.events"),
    /** The datacenter of this service (carried in every event as `origin`). */
    datacenter: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes"),
    /** Partitions when the topic has to be created. */
    partitions: z.number().int().min(1).max(1000).default(3),
    /** Replication factor when the topic has to be created; the broker's default when omitted. */
    replicationFactor: z.number().int().min(1).max(10).optional(),
    /** Events per produce request. */
    batchSize: z.number().int().min(1).max(5000).default(500),
    /** Idle poll of the outbox (new events also wake the publisher at once). */
    pollMs: z.number().int().min(10).max(60_000).default(500),
    /** Backoff while Kafka is unreachable: doubles from `initialMs` up to `maxMs`. */
    retry: z
      .object({
        initialMs: z.number().int().min(10).default(200),
        maxMs: z.number().int().min(10).default(10_000),
      })
      .strict()
      .default({}),
  })
  .strict();

/** Read-only replica: consumes the events stream of its own datacenter's Kafka into its own database. */
const replicaSchema = z
  .object({
    brokers,
    /** TLS and SASL of this datacenter's Kafka (../kafka/security.ts); secrets by `{ env }`/`{ file }`. */
    security: kafkaSecuritySchema.optional(),
    /** Local and replicated (`<origin>.<topic>`) event topics; missing ones are subscribed once they exist. */
    topics: z.array(topicName).min(1),
    groupId: z.string().min(1).max(200),
    /** How often missing topics are looked for. */
    topicCheckMs: z.number().int().min(100).max(600_000).default(5000),
  })
  .strict();

/** A replicator's admin API (replicator/admin.ts) the dashboard reads through `GET /v1/replication`. */
const replicatorLinkSchema = z
  .object({
    /** The datacenter this replicator runs in (shown as the row's datacenter). */
    datacenter: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes"),
    /** Its admin base URL, e.g. `http://127.0.0.1:9100` (`/status` and `/metrics` are read under it). */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), "an http:// or https:// URL"),
  })
  .strict();

/** The dashboard page (`/dashboard`): what it reads besides this service. */
const dashboardSchema = z
  .object({
    /** Replicator admin APIs to aggregate; the page says none is configured when empty. */
    replicators: z.array(replicatorLinkSchema).max(50).default([]),
    /** How long one read of a replicator's admin API may take. */
    timeoutMs: z.number().int().min(100).max(30_000).default(2000),
  })
  .strict();

export const configSchema = z
  .object({
    /** `primary` issues licenses; `replica` only serves reads from the replicated events stream. */
    mode: z.enum(["primary", "replica"]).default("primary"),
    events: eventsSchema.optional(),
    replica: replicaSchema.optional(),
    server: z
      .object({
        /** Interface to bind: loopback unless configured otherwise (`0.0.0.0` inside a container). */
        host: z
          .string()
          .regex(/^[0-9a-fA-F.:]+$|^localhost$/, "an IP address or localhost")
          .default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(0),
        bodyLimitBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024),
        rateLimit: z
          .object({
            /** Tokens refilled per second per API key. */
            perSecond: z.number().positive().default(200),
            burst: z.number().int().positive().default(1000),
          })
          .strict()
          .default({}),
        /** `POST /v1/licenses/batch`: items per request and its own body limit. */
        bulk: z
          .object({
            maxItems: z.number().int().min(1).max(10_000).default(500),
            bodyLimitBytes: z
              .number()
              .int()
              .positive()
              .default(1024 * 1024),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    database: z
      .object({
        path: z.string().min(1),
        /**
         * Group commit: accepted requests are inserted together in one SQLite transaction, collected for
         * this long (0 = the requests of one event-loop turn); the 202 is sent after that commit.
         */
        groupCommitMs: z.number().int().min(0).max(50).default(0),
        /** At most this many requests per group commit (a full group is committed at once). */
        groupCommitMaxSize: z.number().int().min(1).max(10_000).default(1000),
      })
      .strict(),
    /** A deployments file `{ chains: { "<chainId>": { address, blockNumber } } }` (relative to the config). */
    deploymentsFile: z.string().optional(),
    chains: z.array(chainSchema).min(1),
    products: z.array(productSchema).default([]),
    policy: z.enum(POLICY_NAMES).default("round-robin"),
    batching: z
      .object({
        maxSize: z.number().int().min(1).max(500).default(50),
        maxWaitMs: z.number().int().min(0).max(60_000).default(100),
        /** `issueBatch` transactions in flight per (chain, signer): sent with consecutive nonces. */
        inFlight: z.number().int().min(1).max(64).default(4),
        /**
         * `every-batch`: `eth_estimateGas` before every batch (a reverting batch is never sent);
         * `learned`: estimate once, then gas per license learned from it (re-estimated after a revert),
         * which halves the work of the node (an estimate executes the whole batch).
         */
        gasEstimate: z.enum(["every-batch", "learned"]).default("learned"),
      })
      .strict()
      .default({}),
    transactions: z
      .object({
        /** A transaction pending longer than this is replaced with higher fees (same nonce). */
        stuckAfterMs: z.number().int().min(100).default(30_000),
        feeBumpPercent: z.number().int().min(10).max(500).default(25),
        maxFeeBumps: z.number().int().min(0).max(20).default(5),
        /** How long one wait for a receipt lasts before the outbox is reconciled again. */
        receiptTimeoutMs: z.number().int().min(1000).default(60_000),
        /** Fee data (`getFeeData`: latest block and priority fee) is reused this long; 0 = per transaction. */
        feeCacheMs: z.number().int().min(0).max(60_000).default(1000),
      })
      .strict()
      .default({}),
    health: z
      .object({
        intervalMs: z.number().int().min(50).default(1000),
        timeoutMs: z.number().int().min(50).default(2000),
        /** Consecutive failed probes before a chain is marked down. */
        failuresToDown: z.number().int().min(1).default(1),
      })
      .strict()
      .default({}),
    apiKeys: z.array(apiKeySchema).min(1),
    dashboard: dashboardSchema.default({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.mode === "replica") {
      if (!config.replica)
        ctx.addIssue({ code: "custom", path: ["replica"], message: "required in replica mode" });
      if (config.events)
        ctx.addIssue({ code: "custom", path: ["events"], message: "a replica publishes no events" });
    } else {
      if (config.replica)
        ctx.addIssue({ code: "custom", path: ["replica"], message: 'only allowed with mode "replica"' });
      config.chains.forEach((chain, i) => {
        if (!chain.signer)
          ctx.addIssue({
            code: "custom",
            path: ["chains", i, "signer"],
            message: "required in primary mode",
          });
      });
    }
    const ids = new Set<number>();
    config.chains.forEach((chain, i) => {
      if (ids.has(chain.chainId)) {
        ctx.addIssue({
          code: "custom",
          path: ["chains", i, "chainId"],
          message: `duplicate chain id ${chain.chainId}`,
        });
      }
      ids.add(chain.chainId);
    });
    config.products.forEach((product, i) => {
      product.chains?.forEach((id, j) => {
        if (!ids.has(id)) {
          ctx.addIssue({
            code: "custom",
            path: ["products", i, "chains", j],
            message: `unknown chain id ${id}`,
          });
        }
      });
    });
    const productIds = new Set<number>();
    config.products.forEach((product, i) => {
      if (productIds.has(product.id)) {
        ctx.addIssue({
          code: "custom",
          path: ["products", i, "id"],
          message: `duplicate product id ${product.id}`,
        });
      }
      productIds.add(product.id);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type ChainConfig = z.infer<typeof chainSchema>;
export type ProductConfig = z.infer<typeof productSchema>;
export type ApiKeyConfig = z.infer<typeof apiKeySchema>;
export type EventsConfig = z.infer<typeof eventsSchema>;
export type ReplicaConfig = z.infer<typeof replicaSchema>;
export type DashboardConfig = z.infer<typeof dashboardSchema>;

/** `chains[1].rpcUrl`: the platform's one field-path style, for a zod issue's path. */
function issuePath(path: readonly PropertyKey[]): string {
  return fieldPath(path.map((part) => (typeof part === "symbol" ? String(part) : part)));
}

/** Validates a parsed config; the error names the first offending field. */
export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issuePath(issue.path) || "(root)";
  const all = result.error.issues.map((i) => `${issuePath(i.path) || "(root)"}: ${i.message}`).join("; ");
  throw new AppError("CONFIG_INVALID", `invalid config: ${all}`, { field });
}

/**
 * The kafkajs security options of `events` or `replica` (`field`), references resolved now, like the
 * signer keys (./signer.ts): an unset variable or unreadable file is CONFIG_INVALID naming the field.
 */
export function kafkaSecurityOf(
  security: KafkaSecurity | undefined,
  field: "events.security" | "replica.security",
  env: NodeJS.ProcessEnv,
): ResolvedKafkaSecurity {
  try {
    return resolveKafkaSecurity(security, field, { env });
  } catch (error) {
    if (!(error instanceof KafkaError)) throw error;
    throw new AppError("CONFIG_INVALID", error.message, {
      cause: error,
      ...(error.field ? { field: error.field } : {}),
    });
  }
}

export interface DeploymentEntry {
  address: string;
  blockNumber?: number;
}

/** Reads `{ chains: { "<chainId>": { address, blockNumber } } }`. */
export function parseDeployments(raw: unknown): Map<number, DeploymentEntry> {
  const schema = z.object({
    chains: z.record(
      z.string().regex(/^\d+$/),
      z.object({ address, blockNumber: z.number().int().optional() }).passthrough(),
    ),
  });
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new AppError(
      "CONFIG_INVALID",
      `invalid deployments file: ${issuePath(issue.path)}: ${issue.message}`,
      {
        field: issuePath(["deploymentsFile", ...issue.path]),
      },
    );
  }
  return new Map(Object.entries(result.data.chains).map(([id, entry]) => [Number(id), entry]));
}

/** A chain whose contract address is known. */
export type ResolvedChain = ChainConfig & { contract: string; deployBlock?: number };

/** Fills in contract addresses from the deployments; every enabled chain must end up with one. */
export function resolveContracts(
  config: Config,
  deployments: Map<number, DeploymentEntry> | undefined,
): ResolvedChain[] {
  return config.chains.map((chain, i) => {
    const deployed = deployments?.get(chain.chainId);
    const contract = chain.contract ?? deployed?.address;
    if (!contract) {
      throw new AppError(
        "CONFIG_INVALID",
        `chain ${chain.name}: no contract address (config or deployments file)`,
        {
          field: fieldPath(["chains", i, "contract"]),
        },
      );
    }
    return {
      ...chain,
      contract,
      ...(deployed?.blockNumber === undefined ? {} : { deployBlock: deployed.blockNumber }),
    };
  });
}

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/** Loads the config file (JSON) and the deployments file it names. */
export function loadConfigFile(file: string): { config: Config; chains: ResolvedChain[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new AppError("CONFIG_INVALID", `cannot read config ${file}`, { field: "(file)", cause: error });
  }
  const config = parseConfig(raw);
  let deployments: Map<number, DeploymentEntry> | undefined;
  if (config.deploymentsFile) {
    const deploymentsPath = path.resolve(path.dirname(file), config.deploymentsFile);
    try {
      deployments = parseDeployments(JSON.parse(readFileSync(deploymentsPath, "utf8")));
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError("CONFIG_INVALID", `cannot read deployments file ${deploymentsPath}`, {
        field: "deploymentsFile",
        cause: error,
      });
    }
  }
  return { config, chains: resolveContracts(config, deployments) };
}
