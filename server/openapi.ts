/** The OpenAPI 3 description of the REST API (served at /openapi.json) and a small docs page. */
import { ERROR_CATALOGUE } from "./errors.js";

const error = { $ref: "#/components/responses/Error" };
const errors = (...codes: number[]): Record<string, unknown> =>
  Object.fromEntries(codes.map((c) => [String(c), error]));
const idParam = { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } };
const json = (schema: unknown): unknown => ({ content: { "application/json": { schema } } });
const license = { $ref: "#/components/schemas/License" };

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.0.3",
    info: {
      title: "Licensing service",
      version: "1.0.0",
      description:
        "Issues software licenses as ERC-721 NFTs on one of several EVM chains chosen per request. " +
        "Authenticate with `Authorization: Bearer <api key>` (or `X-API-Key`). " +
        "A read-only replica (`mode: replica`) serves the GET routes and answers writes with 405 `READ_ONLY_REPLICA`.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths: {
      "/v1/licenses": {
        post: {
          summary: "Request a license (accepted at once, issued on-chain asynchronously)",
          parameters: [
            { name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 200 } },
            {
              name: "wait",
              in: "query",
              schema: { type: "string" },
              description: "`true` or milliseconds: wait for confirmation",
            },
            { name: "Prefer", in: "header", schema: { type: "string" }, description: "`wait=<seconds>`" },
          ],
          requestBody: { required: true, ...(json({ $ref: "#/components/schemas/IssueRequest" }) as object) },
          responses: {
            "201": { description: "Confirmed on-chain (when waiting)", ...(json(license) as object) },
            "202": { description: "Accepted", ...(json(license) as object) },
            ...errors(400, 401, 403, 405, 409, 413, 415, 429, 503),
          },
        },
        get: {
          summary: "List licenses (own licenses; admin: all)",
          parameters: ["licensee", "productId", "status", "chainId", "limit", "cursor"].map((name) => ({
            name,
            in: "query",
            schema: { type: "string" },
          })),
          responses: {
            "200": json({
              type: "object",
              properties: {
                items: { type: "array", items: license },
                nextCursor: { type: "string", nullable: true },
              },
            }),
            ...errors(400, 401, 403, 429),
          },
        },
      },
      "/v1/licenses/batch": {
        post: {
          summary: "Request many licenses at once (one result per item)",
          description:
            "Validation is all-or-nothing: one invalid item (schema, unknown product or chain, an idempotency key " +
            "repeated within the request) makes the whole request a 400 `VALIDATION_FAILED` whose `field` names it " +
            "(`items.<index>.<field>`), and nothing is accepted. A valid request is answered 202 with one result per " +
            "item, in order: `status` 202 with the license (`replayed: true` for an idempotent replay), or the item's " +
            "own error (`IDEMPOTENCY_CONFLICT` 409, `NO_CHAIN_AVAILABLE` 503). Each item's `idempotencyKey` shares " +
            "the namespace of the single endpoint's `Idempotency-Key`. Costs one rate-limit token per item; the " +
            "items are committed together, before the answer.",
          requestBody: {
            required: true,
            ...(json({ $ref: "#/components/schemas/BulkIssueRequest" }) as object),
          },
          responses: {
            "202": {
              description: "Processed",
              ...(json({ $ref: "#/components/schemas/BulkIssueResult" }) as object),
            },
            ...errors(400, 401, 403, 405, 413, 415, 429),
          },
        },
      },
      "/v1/licenses/{id}": {
        get: {
          summary: "Get a license",
          parameters: [idParam],
          responses: { "200": json(license), ...errors(400, 401, 403, 404) },
        },
      },
      "/v1/licenses/{id}/verify": {
        get: {
          summary: "Verify a license by reading its chain",
          parameters: [idParam],
          responses: {
            "200": json({ $ref: "#/components/schemas/Verification" }),
            ...errors(400, 401, 403, 404),
          },
        },
      },
      "/v1/licenses/{id}/renew": {
        post: {
          summary: "Extend a subscription license",
          parameters: [idParam],
          requestBody: json({
            type: "object",
            required: ["durationSeconds"],
            properties: { durationSeconds: { type: "integer", minimum: 1 } },
          }),
          responses: { "200": json(license), ...errors(400, 401, 403, 404, 405, 409, 503) },
        },
      },
      "/v1/licenses/{id}/revoke": {
        post: {
          summary: "Revoke a license (admin)",
          parameters: [idParam],
          requestBody: json({ type: "object", properties: { reason: { type: "string", maxLength: 31 } } }),
          responses: { "200": json(license), ...errors(400, 401, 403, 404, 405, 409, 503) },
        },
      },
      "/v1/products": {
        get: {
          summary: "List products",
          responses: { "200": json({ type: "object" }), ...errors(401, 403) },
        },
        post: {
          summary: "Create a product (admin)",
          requestBody: json({ $ref: "#/components/schemas/Product" }),
          responses: {
            "201": json({ $ref: "#/components/schemas/Product" }),
            ...errors(400, 401, 403, 405, 409),
          },
        },
      },
      "/v1/chains": {
        get: {
          summary: "Chains: health, queue depth, head block, issued count, weight",
          responses: { "200": json({ type: "object" }) },
        },
      },
      "/healthz": {
        get: { summary: "Liveness", security: [], responses: { "200": { description: "alive" } } },
      },
      "/readyz": {
        get: {
          summary: "Readiness (a healthy chain)",
          security: [],
          responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          security: [],
          responses: { "200": { description: "text exposition" } },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      responses: {
        Error: { description: "Error", ...(json({ $ref: "#/components/schemas/Error" }) as object) },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { type: "string", enum: Object.keys(ERROR_CATALOGUE) },
            message: { type: "string" },
            field: { type: "string" },
          },
        },
        IssueRequest: {
          type: "object",
          required: ["productId", "licensee"],
          additionalProperties: false,
          properties: {
            productId: { type: "integer", minimum: 1 },
            licensee: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" },
            durationSeconds: { type: "integer", minimum: 1 },
            seats: { type: "integer", minimum: 1 },
            chain: {
              description: "chain id or name, or a list in order of preference",
              oneOf: [
                { type: "integer" },
                { type: "string" },
                { type: "array", items: { oneOf: [{ type: "integer" }, { type: "string" }] } },
              ],
            },
          },
        },
        BulkIssueRequest: {
          type: "object",
          required: ["items"],
          additionalProperties: false,
          properties: {
            items: {
              type: "array",
              minItems: 1,
              description: "at most `server.bulk.maxItems` (default 500)",
              items: {
                allOf: [
                  { $ref: "#/components/schemas/IssueRequest" },
                  {
                    type: "object",
                    properties: { idempotencyKey: { type: "string", maxLength: 200 } },
                  },
                ],
              },
            },
          },
        },
        BulkIssueResult: {
          type: "object",
          properties: {
            accepted: { type: "integer", description: "items that created a license" },
            replayed: { type: "integer", description: "items answered with the license of their key" },
            failed: { type: "integer", description: "items with an error" },
            items: {
              type: "array",
              items: {
                type: "object",
                required: ["index", "status"],
                properties: {
                  index: { type: "integer" },
                  status: { type: "integer", description: "202, or the HTTP status of the item's error" },
                  replayed: { type: "boolean" },
                  license,
                  error: { $ref: "#/components/schemas/Error" },
                },
              },
            },
          },
        },
        License: {
          type: "object",
          properties: {
            id: { type: "string", format: "uuid" },
            status: { type: "string", enum: ["accepted", "submitted", "confirmed", "failed"] },
            productId: { type: "integer" },
            licensee: { type: "string" },
            seats: { type: "integer" },
            expiresAt: { type: "integer", nullable: true },
            chainId: { type: "integer" },
            contract: { type: "string" },
            policy: { type: "string" },
            reason: { type: "string" },
            tokenId: { type: "string" },
            txHash: { type: "string" },
            blockNumber: { type: "integer" },
            revoked: { type: "boolean" },
            error: { $ref: "#/components/schemas/Error" },
          },
        },
        Verification: {
          type: "object",
          properties: {
            code: {
              type: "string",
              enum: ["VALID", "EXPIRED", "REVOKED", "NOT_FOUND", "NOT_ISSUED", "CHAIN_UNAVAILABLE"],
            },
            valid: { type: "boolean" },
            chainId: { type: "integer" },
            contract: { type: "string" },
            tokenId: { type: "string" },
            owner: { type: "string" },
            expiresAt: { type: "integer" },
            revoked: { type: "boolean" },
            blockNumber: { type: "integer" },
          },
        },
        Product: {
          type: "object",
          required: ["id", "name"],
          properties: {
            id: { type: "integer" },
            name: { type: "string" },
            defaultDurationSeconds: { type: "integer" },
            chains: { type: "array", items: { type: "integer" } },
          },
        },
      },
    },
  };
}

/** A dependency-free docs page: lists the operations of the OpenAPI document and lets you try GETs. */
export function docsPage(): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Licensing API</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}code{background:#eee;padding:0 .3em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>
</head><body><h1>Licensing API</h1><p>OpenAPI document: <a href="/openapi.json">/openapi.json</a></p>
<p>API key: <input id="key" size="40"> <input id="path" value="/v1/chains" size="40"> <button id="go">GET</button></p><pre id="out"></pre>
<div id="ops"></div><script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{const ops=document.getElementById('ops');
for(const [p,item] of Object.entries(doc.paths))for(const [m,op] of Object.entries(item)){const d=document.createElement('p');
d.innerHTML='<code>'+m.toUpperCase()+' '+p+'</code> '+op.summary;ops.appendChild(d);}});
document.getElementById('go').onclick=()=>fetch(document.getElementById('path').value,{headers:{authorization:'Bearer '+document.getElementById('key').value}})
.then(r=>r.text()).then(t=>document.getElementById('out').textContent=t);
</script></body></html>`;
}
