/**
 * Wires config → chains, store, service, app (and the events publisher, or in replica mode the events
 * consumer); `listen` binds 127.0.0.1 only.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import express from "express";
import type { Logger } from "pino";
import { createLogger } from "../common/log.js";
import { createApp } from "./app.js";
import { ApiKeys, RateLimiter } from "./auth.js";
import { ChainClient } from "./chain.js";
import { loadSignerKey } from "./signer.js";
import { kafkaSecurityOf, type Config, type ResolvedChain } from "./config.js";
import { AppError, errorBody } from "./errors.js";
import { createMetrics } from "./metrics.js";
import { EventPublisher } from "./publisher.js";
import { ReadOnlyChainClient, ReplicaConsumer } from "./replica.js";
import { allowOf, listRoutes, matchTemplate, methodTable } from "./routes.js";
import { LicenseService } from "./service.js";
import { SqliteStore } from "./store.js";

export interface Runtime {
  service: LicenseService;
  app: ReturnType<typeof createApp>;
  store: SqliteStore;
  logger: Logger;
  /** Present when `events` is configured (primary mode). */
  publisher?: EventPublisher;
  /** Present in replica mode. */
  replica?: ReplicaConsumer;
  stop(): Promise<void>;
}

export async function buildRuntime(
  config: Config,
  chains: ResolvedChain[],
  options: { env?: NodeJS.ProcessEnv; logger?: Logger; defaultMetrics?: boolean } = {},
): Promise<Runtime> {
  const logger =
    options.logger ??
    createLogger({
      level: process.env.LOG_LEVEL ?? "info",
      redact: ["*.privateKey", "*.apiKey", "*.password", "*.passphrase", "req.headers.authorization"],
    });
  const env = options.env ?? process.env;
  const readOnly = config.mode === "replica";
  const clients: ChainClient[] = [];
  for (const chain of chains) {
    clients.push(
      readOnly ? new ReadOnlyChainClient(chain) : new ChainClient(chain, await loadSignerKey(chain, env)),
    );
  }
  const events = config.events;
  // Kafka secrets resolved like the signer keys, before anything is opened
  const eventsSecurity = events ? kafkaSecurityOf(events.security, "events.security", env) : {};
  const replicaSecurity = config.replica
    ? kafkaSecurityOf(config.replica.security, "replica.security", env)
    : {};
  const contracts = new Map(chains.map((c) => [c.chainId, c.contract]));
  // every committed change with events (accept, confirm, renew, revoke, …) wakes the publisher
  const wake: { publisher?: EventPublisher } = {};
  const store = new SqliteStore(
    config.database.path,
    events
      ? {
          events: {
            origin: events.datacenter,
            contractOf: (id) => contracts.get(id),
            onCommitted: () => wake.publisher?.notify(),
          },
        }
      : {},
  );
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? false });
  const service = new LicenseService(config, clients, store, logger, metrics, { readOnly });
  // publisher and consumer run in the background: Kafka being down delays events, never the service
  const publisher = events
    ? new EventPublisher(
        store,
        events,
        logger.child({ component: "events" }),
        metrics.registry,
        eventsSecurity,
      )
    : undefined;
  wake.publisher = publisher;
  const replica = config.replica
    ? new ReplicaConsumer(
        store,
        config.replica,
        logger.child({ component: "replica" }),
        metrics.registry,
        replicaSecurity,
      )
    : undefined;
  await service.start();
  publisher?.start();
  replica?.start();
  const api = createApp({
    service,
    apiKeys: new ApiKeys(config.apiKeys),
    rateLimiter: new RateLimiter(config.server.rateLimit.perSecond, config.server.rateLimit.burst),
    logger,
    metrics,
    bodyLimitBytes: config.server.bodyLimitBytes,
    bulk: config.server.bulk,
    dashboard: config.dashboard,
  });
  const app = readOnly ? readOnlyApp(api) : api;
  return {
    service,
    app,
    store,
    logger,
    ...(publisher ? { publisher } : {}),
    ...(replica ? { replica } : {}),
    async stop() {
      await replica?.stop();
      await service.stop();
      await publisher?.stop();
      store.close();
    },
  };
}

/** Most bytes of a request's headers (Node's default, stated): larger is 431 `HEADERS_TOO_LARGE`. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Requests Node's HTTP parser refuses before Express sees them (headers over the limit, malformed
 * requests) are answered in the `{code, message}` format, then the connection is closed.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable || (error.code !== undefined && ["ECONNRESET", "EPIPE"].includes(error.code))) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const { status, body } = errorBody(
    tooLarge
      ? new AppError("HEADERS_TOO_LARGE", `request headers larger than ${MAX_HEADER_BYTES} bytes`)
      : new AppError("VALIDATION_FAILED", "malformed HTTP request"),
  );
  const payload = JSON.stringify(body);
  const reason = tooLarge ? "Request Header Fields Too Large" : "Bad Request";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
  );
}

/** Listens on `host` (loopback unless configured otherwise, e.g. `0.0.0.0` inside a container). */
export function listen(
  app: Runtime["app"],
  port: number,
  host = "127.0.0.1",
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app);
    server.on("clientError", answerClientError);
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

/**
 * A replica answers every write under `/v1` with `405 READ_ONLY_REPLICA` (before auth and body checks);
 * its `Allow` (and its `OPTIONS` answer) lists only the path's read methods. A method the path lacks
 * even on the primary is `405 METHOD_NOT_ALLOWED`, an unknown path the API's 404.
 */
function readOnlyApp(api: express.Express): express.Express {
  const app = express();
  app.disable("x-powered-by");
  let table: Map<string, Set<string>> | undefined;
  app.use("/v1", (req, res, next) => {
    if (req.method === "GET" || req.method === "HEAD") return next();
    table ??= methodTable(listRoutes(api));
    const template = matchTemplate(table.keys(), `/v1${req.path}`);
    if (template === undefined) return next();
    const methods = table.get(template)!;
    const allow = allowOf(new Set([...methods].filter((m) => m === "GET")));
    if (req.method === "OPTIONS") {
      res.set("Allow", allow).status(204).end();
      return;
    }
    const { status, body } = errorBody(
      methods.has(req.method)
        ? new AppError("READ_ONLY_REPLICA", "this instance is a read-only replica; write to the primary")
        : new AppError(
            "METHOD_NOT_ALLOWED",
            `${req.method} is not allowed on ${template}; allowed: ${allow}`,
          ),
    );
    res.set("Allow", allow).status(status).json(body);
  });
  app.use(api);
  return app;
}
