/** Wires config → chains, store, service, app; `listen` binds 127.0.0.1 only. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { createApp } from "./app.js";
import { ApiKeys, RateLimiter } from "./auth.js";
import { ChainClient, loadSignerKey } from "./chain.js";
import type { Config, ResolvedChain } from "./config.js";
import { createMetrics } from "./metrics.js";
import { LicenseService } from "./service.js";
import { SqliteStore } from "./store.js";

export interface Runtime {
  service: LicenseService;
  app: ReturnType<typeof createApp>;
  store: SqliteStore;
  stop(): Promise<void>;
}

export async function buildRuntime(
  config: Config,
  chains: ResolvedChain[],
  options: { env?: NodeJS.ProcessEnv; logger?: Logger; defaultMetrics?: boolean } = {},
): Promise<Runtime> {
  const logger =
    options.logger ??
    pino({
      level: process.env.LOG_LEVEL ?? "info",
      redact: ["*.privateKey", "*.apiKey", "req.headers.authorization"],
    });
  const env = options.env ?? process.env;
  const clients: ChainClient[] = [];
  for (const chain of chains) clients.push(new ChainClient(chain, await loadSignerKey(chain, env)));
  const store = new SqliteStore(config.database.path);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? false });
  const service = new LicenseService(config, clients, store, logger, metrics);
  await service.start();
  const app = createApp({
    service,
    apiKeys: new ApiKeys(config.apiKeys),
    rateLimiter: new RateLimiter(config.server.rateLimit.perSecond, config.server.rateLimit.burst),
    logger,
    metrics,
    bodyLimitBytes: config.server.bodyLimitBytes,
  });
  return {
    service,
    app,
    store,
    async stop() {
      await service.stop();
      store.close();
    },
  };
}

export function listen(app: Runtime["app"], port: number): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, "127.0.0.1", (error?: Error) => {
      if (error) reject(error);
      else resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}
