/**
 * The response shapes of the REST API (zod): `app.ts` builds its bodies to these types, `openapi.ts`
 * documents them, and the conformance test validates every answer against the generated document.
 */
import { z } from "zod";
import { POLICY_NAMES } from "./config.js";
import { ERROR_CATALOGUE, type ErrorCode } from "./errors.js";
import "./requests.js"; // extends zod with `.openapi(...)` before the schemas below are built

const codes = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

/** The one error body: `{ code, message, field? }` (`field` names the offending input). */
export const errorSchema = z
  .object({
    code: z.enum(codes),
    message: z.string(),
    field: z.string().optional(),
  })
  .strict()
  .openapi("Error");

const statuses = ["accepted", "submitted", "confirmed", "failed"] as const;

export const licenseSchema = z
  .object({
    id: z.string().uuid(),
    status: z.enum(statuses),
    productId: z.number().int(),
    licensee: z.string(),
    seats: z.number().int(),
    expiresAt: z.number().int().nullable().openapi({ description: "Unix seconds; null = perpetual" }),
    chainId: z.number().int(),
    contract: z.string(),
    policy: z.string(),
    reason: z.string(),
    requestRef: z.string(),
    revoked: z.boolean(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
    txHash: z.string().optional().openapi({ description: "submitted and confirmed licenses" }),
    tokenId: z.string().optional().openapi({ description: "confirmed licenses" }),
    blockNumber: z.number().int().optional().openapi({ description: "confirmed licenses" }),
    error: z
      .object({ code: z.string(), message: z.string() })
      .strict()
      .optional()
      .openapi({ description: "failed licenses" }),
  })
  .strict()
  .openapi("License");
export type LicenseView = z.infer<typeof licenseSchema>;

export const licensePageSchema = z
  .object({
    items: z.array(licenseSchema),
    nextCursor: z.string().nullable().openapi({ description: "pass as `cursor` for the next page" }),
  })
  .strict()
  .openapi("LicensePage");

export const bulkResultSchema = z
  .object({
    accepted: z.number().int().openapi({ description: "items that created a license" }),
    replayed: z.number().int().openapi({ description: "items answered with the license of their key" }),
    failed: z.number().int().openapi({ description: "items with an error" }),
    items: z.array(
      z
        .object({
          index: z.number().int(),
          status: z.number().int().openapi({ description: "202, or the HTTP status of the item's error" }),
          replayed: z.literal(true).optional(),
          license: licenseSchema.optional(),
          error: errorSchema.optional(),
        })
        .strict(),
    ),
  })
  .strict()
  .openapi("BulkIssueResult");

export const verificationSchema = z
  .object({
    code: z.enum(["VALID", "EXPIRED", "REVOKED", "NOT_FOUND", "NOT_ISSUED", "CHAIN_UNAVAILABLE"]),
    valid: z.boolean(),
    chainId: z.number().int(),
    contract: z.string(),
    tokenId: z.string().optional(),
    owner: z.string().optional(),
    expiresAt: z.number().int().optional(),
    revoked: z.boolean().optional(),
    blockNumber: z.number().int().optional(),
    blockTimestamp: z.number().int().optional(),
  })
  .strict()
  .openapi("Verification");

export const productSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    defaultDurationSeconds: z.number().int(),
    chains: z.array(z.number().int()).optional(),
  })
  .strict()
  .openapi("Product");
export const productListSchema = z
  .object({ items: z.array(productSchema) })
  .strict()
  .openapi("ProductList");

export const chainReportSchema = z
  .object({
    name: z.string(),
    chainId: z.number().int(),
    contract: z.string(),
    enabled: z.boolean(),
    healthy: z.boolean(),
    weight: z.number(),
    confirmations: z.number().int(),
    headBlock: z.number().int().nullable(),
    latencyMs: z.number().nullable(),
    lastCheckedAt: z.string().datetime().nullable(),
    error: z.string().nullable(),
    queueDepth: z.number().int(),
    issued: z.number().int(),
    signer: z.string().nullable().openapi({ description: "null on a read-only replica" }),
    signerBalanceWei: z.string().nullable(),
    feePerGasWei: z.string().nullable(),
  })
  .strict()
  .openapi("ChainReport");
export const chainsSchema = z
  .object({ policy: z.enum(POLICY_NAMES), items: z.array(chainReportSchema) })
  .strict()
  .openapi("Chains");

export const healthSchema = z.object({ status: z.literal("ok") }).strict();
export const readySchema = z.object({ status: z.enum(["ready", "no healthy chain"]) }).strict();

/** `GET /v1/replication`: one summary per configured replicator (server/replication-view.ts). */
export const pipelineSummarySchema = z
  .object({
    id: z.string(),
    source: z.string(),
    destination: z.string(),
    state: z.string(),
    error: z.string().optional(),
    records: z.number(),
    lag: z.number().nullable().openapi({ description: "sum of the partitions' lag; null when not read" }),
  })
  .strict();
export const latencySummarySchema = z
  .object({
    destination: z.string(),
    count: z.number(),
    meanSeconds: z.number().nullable(),
    p95Seconds: z
      .number()
      .nullable()
      .openapi({ description: "upper bound of the bucket holding the 95th percentile" }),
  })
  .strict();
export const replicatorSummarySchema = z
  .object({
    datacenter: z.string(),
    reachable: z.boolean(),
    error: z.string().optional().openapi({ description: "why it could not be read; never its URL" }),
    id: z.string().optional(),
    running: z.boolean().optional(),
    leader: z.boolean().optional(),
    lastRoundAt: z.string().nullable().optional(),
    lastRoundAgeMs: z.number().nullable().optional(),
    datacenters: z.array(z.object({ name: z.string(), reachable: z.boolean() }).strict()).optional(),
    pipelines: z.array(pipelineSummarySchema).optional(),
    latency: z.array(latencySummarySchema).optional(),
  })
  .strict()
  .openapi("ReplicatorSummary");
export const replicationReportSchema = z
  .object({ configured: z.number().int(), replicators: z.array(replicatorSummarySchema) })
  .strict()
  .openapi("ReplicationReport");
