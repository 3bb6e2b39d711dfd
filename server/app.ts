/**
 * The HTTP layer: `createApp(deps)` builds the Express app (no listening here). Handlers validate,
 * call the service, map the result; one error handler turns every error into `{code, message, field?}`.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { z } from "zod";
import {
  allows,
  ApiKeys,
  RateLimiter,
  rateLimitHeaders,
  type Principal,
  type RateLimitResult,
} from "./auth.js";
import type { DashboardConfig, Scope } from "./config.js";
import { AppError, errorBody } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { pagesRouter } from "./pages.js";
import { cachedReplicationReport } from "./replication-view.js";
import {
  bulkEnvelope,
  bulkItem,
  idParam,
  idempotencyKey,
  issueBody,
  issueQuery,
  listQuery,
  parse,
  productBody,
  renewBody,
  revokeBody,
} from "./requests.js";
import type { LicenseView } from "./responses.js";
import { listRoutes, methodGate } from "./routes.js";
import type { IssueInput, LicenseService } from "./service.js";
import type { LicenseRecord } from "./domain.js";
import { errorFields } from "../common/log.js";

export interface AppDeps {
  service: LicenseService;
  apiKeys: ApiKeys;
  rateLimiter: RateLimiter;
  logger: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Upper bound for `?wait` / `Prefer: wait=N` (ms). */
  maxWaitMs?: number;
  /** `POST /v1/licenses/batch`: most items per request and its body limit (defaults 500 / 1 MiB). */
  bulk?: { maxItems: number; bodyLimitBytes: number };
  /** The dashboard's replicator admin APIs (`GET /v1/replication`); none when omitted. */
  dashboard?: DashboardConfig;
}

function principal(res: Response): Principal {
  return res.locals.principal as Principal;
}

export function licenseView(license: LicenseRecord, contract: string): LicenseView {
  const view: LicenseView = {
    id: license.id,
    status: license.status,
    productId: license.productId,
    licensee: license.licensee,
    seats: license.seats,
    expiresAt: license.expiresAt === 0 ? null : license.expiresAt,
    chainId: license.chainId,
    contract,
    policy: license.policy,
    reason: license.reason,
    requestRef: license.requestRef,
    revoked: license.revoked,
    createdAt: new Date(license.createdAt).toISOString(),
    updatedAt: new Date(license.updatedAt).toISOString(),
  };
  if (license.status === "submitted") view.txHash = license.txHash;
  if (license.status === "confirmed")
    Object.assign(view, {
      tokenId: license.tokenId,
      txHash: license.txHash,
      blockNumber: license.blockNumber,
    });
  if (license.status === "failed") view.error = { code: license.errorCode, message: license.errorMessage };
  return view;
}

/** `?wait=true` (default wait) or `?wait=<ms>` or `Prefer: wait=<seconds>` (RFC 7240). */
function waitMs(req: Request, max: number): number {
  const q = parse(issueQuery.shape.wait, req.query.wait, "wait");
  if (q !== undefined) {
    if (q === "true") return max;
    if (q === "false") return 0;
    return Math.min(Number(q), max);
  }
  const prefer = req.get("prefer");
  const match = prefer ? /(?:^|[,;\s])wait=(\d+)/i.exec(prefer) : null;
  return match ? Math.min(Number(match[1]) * 1000, max) : 0;
}

export function createApp(deps: AppDeps): express.Express {
  const { service, metrics, logger } = deps;
  const maxWait = deps.maxWaitMs ?? 30_000;
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  // the document and the route table of the method gate are built once, from the schemas and the router
  const bulk = deps.bulk ?? { maxItems: 500, bodyLimitBytes: 1024 * 1024 };
  let document: Record<string, unknown> | undefined;
  const openApi = (): Record<string, unknown> =>
    (document ??= openApiDocument({
      bulkMaxItems: bulk.maxItems,
      bodyLimitBytes: deps.bodyLimitBytes,
      bulkBodyLimitBytes: bulk.bodyLimitBytes,
    }));

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      metrics.httpRequests.inc({
        method: req.method,
        route: route ? `${req.baseUrl}${route}` : "unmatched",
        status: res.statusCode,
      });
      logger.debug(
        {
          method: req.method,
          url: req.originalUrl,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        "http",
      );
    });
    next();
  });
  // 405 with Allow for a method a known path lacks, 204 with Allow for OPTIONS (before authentication)
  app.use(methodGate(() => listRoutes(app)));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", (_req, res) => {
    const ready = service.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "no healthy chain" });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get("/openapi.json", (_req, res) => {
    res.json(openApi());
  });
  // /docs (Swagger UI), /dashboard and their static files, with security headers (./pages.ts)
  app.use(pagesRouter());

  const v1 = express.Router();
  /** `RateLimit-Policy` / `RateLimit` on every rate-limited answer, `Retry-After` on a 429. */
  const limited = (res: Response, limit: RateLimitResult): void => {
    res.set(rateLimitHeaders(deps.rateLimiter, limit));
    if (!limit.allowed) res.set("Retry-After", String(limit.retryAfterSeconds));
  };

  // Authentication first (401), then rate limit (429), then body checks.
  v1.use((req, res, next) => {
    // the auth scheme is case-insensitive (RFC 9110 §11.1): `bearer`, `Bearer`, `BEARER`
    const header = /^bearer\s+(\S+)\s*$/i.exec(req.get("authorization") ?? "")?.[1];
    const presented = header ?? req.get("x-api-key");
    if (!presented) throw new AppError("UNAUTHENTICATED", "missing API key");
    const who = deps.apiKeys.authenticate(presented);
    if (!who) throw new AppError("UNAUTHENTICATED", "unknown API key");
    const limit = deps.rateLimiter.take(who.id);
    limited(res, limit);
    if (!limit.allowed)
      throw new AppError("RATE_LIMITED", `rate limit exceeded; retry after ${limit.retryAfterSeconds} s`);
    res.locals.principal = who;
    next();
  });
  v1.use((req, _res, next) => {
    const hasBody = Number(req.get("content-length") ?? 0) > 0 || req.get("transfer-encoding") !== undefined;
    if (hasBody && !req.is("application/json")) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", "request bodies must be application/json", {
        field: "Content-Type",
      });
    }
    next();
  });
  // the bulk route has its own (larger) body limit; every other route the configured one
  const jsonBody = express.json({ limit: deps.bodyLimitBytes, type: "application/json", strict: true });
  const bulkJsonBody = express.json({ limit: bulk.bodyLimitBytes, type: "application/json", strict: true });
  v1.use((req, res, next) => {
    if (req.method === "POST" && req.path === "/licenses/batch") bulkJsonBody(req, res, next);
    else jsonBody(req, res, next);
  });

  const need =
    (scope: Scope) =>
    (_req: Request, res: Response, next: NextFunction): void => {
      if (!allows(principal(res), scope))
        throw new AppError("FORBIDDEN", `this API key lacks the '${scope}' scope`);
      next();
    };
  const body = (req: Request): unknown => (req.body === undefined ? {} : req.body);

  const contractOf = (chainId: number): string => service.clients.get(chainId)?.config.contract ?? "";
  const resolveChains = (chain: z.infer<typeof issueBody>["chain"], prefix = ""): number[] | undefined => {
    if (chain === undefined) return undefined;
    const list = Array.isArray(chain) ? chain : [chain];
    return list.map((ref, i) => {
      if (typeof ref === "number") return ref;
      const found = [...service.clients.values()].find((c) => c.config.name === ref);
      if (!found)
        throw new AppError("VALIDATION_FAILED", `unknown chain ${ref}`, {
          field: `${prefix}${Array.isArray(chain) ? `chain.${i}` : "chain"}`,
        });
      return found.chainId;
    });
  };
  const issueInput = (input: z.infer<typeof issueBody>, prefix = ""): IssueInput => {
    const chains = resolveChains(input.chain, prefix);
    return {
      productId: input.productId,
      licensee: input.licensee,
      ...(input.durationSeconds === undefined ? {} : { durationSeconds: input.durationSeconds }),
      ...(input.seats === undefined ? {} : { seats: input.seats }),
      ...(chains ? { chains } : {}),
    };
  };

  v1.post("/licenses", need("licenses:write"), async (req, res) => {
    const key = req.get("idempotency-key");
    if (key !== undefined) parse(idempotencyKey, key, "Idempotency-Key");
    const input = parse(issueBody, body(req));
    const wait = waitMs(req, maxWait);
    const { license, created } = await service.accept(principal(res), issueInput(input), key);
    const final = wait > 0 ? await service.waitFor(license.id, wait) : license;
    res.set("Location", `/v1/licenses/${license.id}`);
    if (!created) res.set("Idempotent-Replayed", "true");
    res.status(final.status === "confirmed" ? 201 : 202).json(licenseView(final, contractOf(final.chainId)));
  });

  /**
   * Bulk issue: `{ items: [{ productId, licensee, ..., idempotencyKey? }] }`. All-or-nothing validation
   * (400 naming `items.<i>.<field>`, nothing accepted); then one result per item, in order, in a 202:
   * `{ index, status: 202, license, replayed? }` or `{ index, status, error: { code, message, field? } }`.
   */
  v1.post("/licenses/batch", need("licenses:write"), async (req, res) => {
    const raw = body(req);
    const items = parse(bulkEnvelope(bulk.maxItems), raw).items;
    const parsed = items.map((item, i) => {
      const value = parse(bulkItem, item, `items.${i}.`);
      return { input: issueInput(value, `items.${i}.`), idempotencyKey: value.idempotencyKey };
    });
    // the request took one token of the rate limit; a bulk request costs one per item
    if (parsed.length > 1) {
      const limit = deps.rateLimiter.take(principal(res).id, Date.now(), parsed.length - 1);
      limited(res, limit);
      if (!limit.allowed) {
        throw new AppError(
          "RATE_LIMITED",
          `rate limit exceeded (${parsed.length} items); retry after ${limit.retryAfterSeconds} s`,
        );
      }
    }
    const results = await service.acceptMany(
      principal(res),
      parsed.map((p) => (p.idempotencyKey === undefined ? { input: p.input } : p)),
    );
    let accepted = 0;
    let replayed = 0;
    let failed = 0;
    const out = results.map((result, index) => {
      if ("error" in result) {
        failed++;
        const { body: error } = errorBody(result.error);
        const field =
          result.error.code === "IDEMPOTENCY_CONFLICT"
            ? `items.${index}.idempotencyKey`
            : error.field === undefined
              ? undefined
              : `items.${index}.${error.field}`;
        return {
          index,
          status: result.error.httpStatus,
          error: { ...error, ...(field ? { field } : {}) },
        };
      }
      if (result.created) accepted++;
      else replayed++;
      return {
        index,
        status: 202,
        ...(result.created ? {} : { replayed: true }),
        license: licenseView(result.license, contractOf(result.license.chainId)),
      };
    });
    res.status(202).json({ accepted, replayed, failed, items: out });
  });

  v1.get("/licenses", need("licenses:read"), (req, res) => {
    const q = parse(listQuery, req.query);
    const page = service.list(principal(res), {
      limit: q.limit,
      ...(q.licensee ? { licensee: q.licensee } : {}),
      ...(q.productId ? { productId: q.productId } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.chainId ? { chainId: q.chainId } : {}),
      ...(q.cursor ? { after: Number(q.cursor) } : {}),
      ...(q.order === "desc" ? { newestFirst: true } : {}),
    });
    res.json({
      items: page.items.map((l) => licenseView(l, contractOf(l.chainId))),
      nextCursor: page.next?.toString() ?? null,
    });
  });

  v1.get("/licenses/:id", need("licenses:read"), (req, res) => {
    const id = parse(idParam, req.params.id, "id");
    const license = service.get(principal(res), id);
    res.json(licenseView(license, contractOf(license.chainId)));
  });

  v1.get("/licenses/:id/verify", need("licenses:read"), async (req, res) => {
    const id = parse(idParam, req.params.id, "id");
    res.json(await service.verify(principal(res), id));
  });

  /** The `Idempotency-Key` header, validated (as on issue), if given. */
  const keyOf = (req: Request): string | undefined => {
    const key = req.get("idempotency-key");
    return key === undefined ? undefined : parse(idempotencyKey, key, "Idempotency-Key");
  };
  const answerAction = (res: Response, result: { license: LicenseRecord; replayed: boolean }): void => {
    if (result.replayed) res.set("Idempotent-Replayed", "true");
    res.json(licenseView(result.license, contractOf(result.license.chainId)));
  };

  v1.post("/licenses/:id/renew", need("licenses:write"), async (req, res) => {
    const id = parse(idParam, req.params.id, "id");
    const key = keyOf(req);
    const input = parse(renewBody, body(req));
    answerAction(res, await service.renew(principal(res), id, input.durationSeconds, key));
  });

  v1.post("/licenses/:id/revoke", need("admin"), async (req, res) => {
    const id = parse(idParam, req.params.id, "id");
    const key = keyOf(req);
    const input = parse(revokeBody, body(req));
    answerAction(res, await service.revoke(principal(res), id, input.reason ?? "revoked", key));
  });

  v1.get("/products", need("licenses:read"), (_req, res) => {
    res.json({ items: service.products() });
  });
  v1.post("/products", need("admin"), (req, res) => {
    const input = parse(productBody, body(req));
    res.status(201).json(
      service.addProduct({
        id: input.id,
        name: input.name,
        defaultDurationSeconds: input.defaultDurationSeconds,
        ...(input.chains ? { chains: input.chains } : {}),
      }),
    );
  });
  v1.get("/chains", need("licenses:read"), (_req, res) => {
    res.json({ policy: service.config.policy, items: service.chainsReport() });
  });

  // the replicators' admin APIs, read for the dashboard (the browser may call only this origin)
  const replication = cachedReplicationReport(deps.dashboard ?? { replicators: [], timeoutMs: 2000 });
  v1.get("/replication", need("platform:read"), async (_req, res) => {
    res.json(await replication());
  });

  app.use("/v1", v1);

  app.use(() => {
    throw new AppError("NOT_FOUND", "no such route");
  });

  // One error handler: catalogue errors as they are, body-parser errors mapped, anything else 500 without details.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let mapped = error;
    const type = (error as { type?: unknown })?.type;
    if (type === "entity.too.large") {
      // the limit of the parser that refused it: the bulk route's own, or the others'
      const limit = (error as { limit?: unknown }).limit;
      const bytes = typeof limit === "number" ? limit : deps.bodyLimitBytes;
      mapped = new AppError("PAYLOAD_TOO_LARGE", `body larger than ${bytes} bytes`);
    } else if (type === "entity.parse.failed")
      mapped = new AppError("INVALID_JSON", "the body is not valid JSON", { field: "(body)" });
    else if (type === "charset.unsupported" || type === "encoding.unsupported") {
      mapped = new AppError("UNSUPPORTED_MEDIA_TYPE", "unsupported body charset or encoding", {
        field: "Content-Type",
      });
    } else if (typeof (error as { status?: unknown })?.status === "number" && !(error instanceof AppError)) {
      const status = (error as { status: number }).status;
      if (status === 400) mapped = new AppError("VALIDATION_FAILED", "malformed request");
    }
    const { status, body: payload } = errorBody(mapped);
    if (status >= 500) logger.error({ err: errorFields(error), url: req.originalUrl }, "request failed");
    res.status(status).json(payload);
  });

  return app;
}
