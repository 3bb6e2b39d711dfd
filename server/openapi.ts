/**
 * The OpenAPI 3.1 document of the REST API (served at /openapi.json), generated from the zod schemas the
 * routes validate with (`requests.ts`) and answer with (`responses.ts`), plus a small docs page.
 * Every status a route can answer is listed with the one error schema; `test/server/openapi.test.ts`
 * fails when a route of the app is missing here or an operation here has no route.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import type { Scope } from "./config.js";
import { ERROR_CATALOGUE } from "./errors.js";
import {
  bulkBody,
  idParams,
  issueBody,
  issueHeaders,
  issueQuery,
  actionHeaders,
  listQuery,
  productBody,
  renewBody,
  revokeBody,
} from "./requests.js";
import {
  bulkResultSchema,
  chainsSchema,
  replicationReportSchema,
  errorSchema,
  healthSchema,
  licensePageSchema,
  licenseSchema,
  productListSchema,
  productSchema,
  readySchema,
  verificationSchema,
} from "./responses.js";

export interface OpenApiOptions {
  /** `server.bulk.maxItems`: the most items of one bulk request. */
  bulkMaxItems: number;
  /** `server.bodyLimitBytes` and `server.bulk.bodyLimitBytes`, cited in the 413 descriptions. */
  bodyLimitBytes: number;
  bulkBodyLimitBytes: number;
}

type Responses = RouteConfig["responses"];

const json = (schema: z.ZodTypeAny): { content: { "application/json": { schema: z.ZodTypeAny } } } => ({
  content: { "application/json": { schema } },
});

/**
 * The codes of the catalogue answered with `status`, for the response's description (not
 * METHOD_NOT_ALLOWED: it answers methods a path lacks, never a documented operation).
 */
function codesOf(status: number): string {
  const codes = Object.entries(ERROR_CATALOGUE)
    .filter(([code, spec]) => spec.httpStatus === status && code !== "METHOD_NOT_ALLOWED")
    .map(([code]) => `\`${code}\``);
  return codes.join(", ");
}

const rateLimitHeaders = {
  RateLimit: {
    description:
      'remaining quota: `"default";r=<tokens left>;t=<seconds until full>` (draft-ietf-httpapi-ratelimit-headers-10)',
    schema: { type: "string" as const },
  },
  "RateLimit-Policy": {
    description: 'the quota: `"default";q=<burst>;w=<seconds to refill it>`',
    schema: { type: "string" as const },
  },
};

/** Error responses with the one error schema; 429 carries `Retry-After`, 405 `Allow`. */
function errors(statuses: number[], notes: Record<number, string> = {}): Responses {
  const out: Responses = {};
  for (const status of statuses) {
    const headers: Record<
      string,
      { description: string; required?: boolean; schema: { type: "string" | "integer" } }
    > = {};
    if (status === 429) {
      headers["Retry-After"] = {
        description: "seconds to wait",
        required: true,
        schema: { type: "integer" },
      };
      Object.assign(headers, rateLimitHeaders);
    }
    if (status === 405)
      headers.Allow = { description: "what a read-only replica allows here", schema: { type: "string" } };
    out[String(status)] = {
      description: [codesOf(status), notes[status]].filter(Boolean).join(": "),
      ...(Object.keys(headers).length ? { headers } : {}),
      ...json(errorSchema),
    };
  }
  return out;
}

export function openApiDocument(options: OpenApiOptions): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description:
      "An API key: `Authorization: Bearer <key>` (the scheme is case-insensitive) or the `X-API-Key: <key>` header.",
  });
  const bearer = [{ bearer: [] }];
  const limit = (bytes: number): string => `body larger than ${bytes} bytes`;
  const v1 = (
    scope: Scope,
    route: Omit<RouteConfig, "responses" | "security">,
    own: Responses,
    statuses: number[],
    notes: Record<number, string> = {},
  ): void => {
    const okHeaders = { headers: rateLimitHeaders };
    const withHeaders = Object.fromEntries(
      Object.entries(own).map(([status, response]) => [status, { ...okHeaders, ...response }]),
    ) as Responses;
    registry.registerPath({
      ...route,
      description: [
        route.description,
        `Needs the \`${scope}\` scope (or \`admin\`${scope === "licenses:read" ? "; or `platform:read`" : ""}).`,
      ]
        .filter(Boolean)
        .join("\n\n"),
      "x-required-scope": scope,
      security: bearer,
      responses: {
        ...withHeaders,
        // every /v1 operation: validation (any body may be bad JSON), key, scope, body size and type, rate limit
        ...errors([...new Set([...statuses, 400, 401, 403, 413, 415, 429])].sort(), {
          413: limit(options.bodyLimitBytes),
          ...notes,
        }),
      },
    });
  };
  const write = 405; // a read-only replica answers every write with READ_ONLY_REPLICA
  const license = (description: string) => ({ description, ...json(licenseSchema) });
  // renew / revoke: the answer of a request under an Idempotency-Key already used
  const actionAnswer = (description: string) => ({
    ...license(description),
    headers: {
      ...rateLimitHeaders,
      "Idempotent-Replayed": {
        description:
          "`true`: the stored answer of an earlier request with this Idempotency-Key (nothing sent again)",
        schema: { type: "string" as const, enum: ["true"] },
      },
    },
  });
  const actionConflicts =
    "`IDEMPOTENCY_CONFLICT`: the Idempotency-Key was used with another body, license or route; " +
    "`IDEMPOTENCY_IN_PROGRESS`: its action's transaction is still pending, retry";

  v1(
    "licenses:write",
    {
      method: "post",
      path: "/v1/licenses",
      summary: "Request a license (accepted at once, issued on-chain asynchronously)",
      request: {
        query: issueQuery,
        headers: issueHeaders,
        body: { required: true, ...json(issueBody) },
      },
    },
    {
      "201": license("Confirmed on-chain (when waiting)"),
      "202": license("Accepted (or still unconfirmed after the wait)"),
    },
    [write, 409, 503],
  );
  v1(
    "licenses:write",
    {
      method: "post",
      path: "/v1/licenses/batch",
      summary: "Request many licenses at once (one result per item)",
      description:
        "Validation is all-or-nothing: one invalid item (schema, unknown product or chain, an idempotency key " +
        "repeated within the request) makes the whole request a 400 `VALIDATION_FAILED` whose `field` names it " +
        "(`items.<index>.<field>`), and nothing is accepted. A valid request is answered 202 with one result per " +
        "item, in order: `status` 202 with the license (`replayed: true` for an idempotent replay), or the item's " +
        "own error (`IDEMPOTENCY_CONFLICT` 409, `NO_CHAIN_AVAILABLE` 503). Each item's `idempotencyKey` shares " +
        "the namespace of the single endpoint's `Idempotency-Key`. Costs one rate-limit token per item.",
      request: { body: { required: true, ...json(bulkBody(options.bulkMaxItems)) } },
    },
    { "202": { description: "Processed: one result per item", ...json(bulkResultSchema) } },
    [write],
    { 413: limit(options.bulkBodyLimitBytes) },
  );
  v1(
    "licenses:read",
    {
      method: "get",
      path: "/v1/licenses",
      summary:
        "List licenses (own licenses; platform:read and admin: all), oldest first; `order=desc` newest first",
      request: { query: listQuery },
    },
    { "200": { description: "A page of licenses", ...json(licensePageSchema) } },
    [],
  );
  v1(
    "licenses:read",
    { method: "get", path: "/v1/licenses/{id}", summary: "Get a license", request: { params: idParams } },
    { "200": license("The license") },
    [404],
  );
  v1(
    "licenses:read",
    {
      method: "get",
      path: "/v1/licenses/{id}/verify",
      summary: "Verify a license by reading its chain",
      request: { params: idParams },
    },
    { "200": { description: "What the chain says", ...json(verificationSchema) } },
    [404],
  );
  v1(
    "licenses:write",
    {
      method: "post",
      path: "/v1/licenses/{id}/renew",
      summary: "Extend a subscription license",
      description:
        "The contract adds `durationSeconds` on every call: send an `Idempotency-Key` so that a retry does not " +
        "extend twice.",
      request: { params: idParams, headers: actionHeaders, body: { required: true, ...json(renewBody) } },
    },
    { "200": actionAnswer("Renewed (or the replay of a renew under the same Idempotency-Key)") },
    [write, 404, 409, 502, 503, 504],
    { 409: actionConflicts },
  );
  v1(
    "admin",
    {
      method: "post",
      path: "/v1/licenses/{id}/revoke",
      summary: "Revoke a license (admin)",
      request: { params: idParams, headers: actionHeaders, body: { required: false, ...json(revokeBody) } },
    },
    { "200": actionAnswer("Revoked (or the replay of a revoke under the same Idempotency-Key)") },
    [write, 404, 409, 502, 503, 504],
    { 409: actionConflicts },
  );
  v1(
    "licenses:read",
    { method: "get", path: "/v1/products", summary: "List products" },
    { "200": { description: "The products", ...json(productListSchema) } },
    [],
  );
  v1(
    "admin",
    {
      method: "post",
      path: "/v1/products",
      summary: "Create a product (admin)",
      request: { body: { required: true, ...json(productBody) } },
    },
    { "201": { description: "Created", ...json(productSchema) } },
    [write, 409],
  );
  v1(
    "licenses:read",
    {
      method: "get",
      path: "/v1/chains",
      summary: "Chains: health, queue depth, head block, issued count, weight",
    },
    { "200": { description: "The chains and the selection policy", ...json(chainsSchema) } },
    [],
  );
  v1(
    "platform:read",
    {
      method: "get",
      path: "/v1/replication",
      summary: "The configured replicators' pipelines, lag and latency (the dashboard's replication panel)",
    },
    { "200": { description: "One summary per configured replicator", ...json(replicationReportSchema) } },
    [],
  );

  registry.registerPath({
    method: "get",
    path: "/healthz",
    summary: "Liveness",
    security: [],
    responses: { "200": { description: "alive", ...json(healthSchema) } },
  });
  registry.registerPath({
    method: "get",
    path: "/readyz",
    summary: "Readiness (a healthy chain)",
    security: [],
    responses: {
      "200": { description: "ready", ...json(readySchema) },
      "503": { description: "no healthy chain", ...json(readySchema) },
    },
  });
  registry.registerPath({
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics (text exposition format)",
    security: [],
    responses: {
      "200": { description: "metrics", content: { "text/plain": { schema: z.string() } } },
    },
  });
  registry.registerPath({
    method: "get",
    path: "/openapi.json",
    summary: "This document",
    security: [],
    responses: {
      "200": {
        description: "OpenAPI 3.1",
        content: { "application/json": { schema: z.object({}).passthrough() } },
      },
    },
  });

  const generator = new OpenApiGeneratorV31(registry.definitions);
  return generator.generateDocument({
    openapi: "3.1.0",
    info: {
      title: "Licensing service",
      version: "1.0.0",
      description:
        "Issues software licenses as ERC-721 NFTs on one of several EVM chains chosen per request. " +
        "Authenticate with `Authorization: Bearer <api key>` (or `X-API-Key`). Every error is " +
        "`{code, message, field?}`. A read-only replica (`mode: replica`) serves the GET routes and answers " +
        "writes with 405 `READ_ONLY_REPLICA`. An unknown method on a known path is 405 `METHOD_NOT_ALLOWED` " +
        "with `Allow`; `OPTIONS` answers 204 with `Allow`.",
    },
    servers: [{ url: "/" }],
    security: bearer,
  }) as unknown as Record<string, unknown>;
}
