/**
 * Wires config → chains, store, service, app (and the events publisher, or in replica mode the events
 * consumer); `listen` binds 127.0.0.1 only.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
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

/** Listens on `host` (loopback unless configured otherwise, e.g. `0.0.0.0` inside a container). */
export function listen(
  app: Runtime["app"],
  port: number,
  host = "127.0.0.1",
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => {
      if (error) reject(error);
      else resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

/** A replica answers every write under `/v1` with `405 READ_ONLY_REPLICA` (before auth and body checks). */
function readOnlyApp(api: express.Express): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use("/v1", (req, res, next) => {
    if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
    const { status, body } = errorBody(
      new AppError("READ_ONLY_REPLICA", "this instance is a read-only replica; write to the primary"),
    );
    res.set("Allow", "GET, HEAD").status(status).json(body);
  });
  app.use(api);
  return app;
}
