/** HTTP admin of one replicator: /healthz, /status (JSON), /metrics (Prometheus). Binds 127.0.0.1 by default. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Health } from "./engine/types.js";
import { errorFields } from "../common/log.js";

/** What the admin endpoints read: one engine (./engine.ts) or a pool of engines (./pool.ts). */
export interface AdminTarget {
  health(): Health | Promise<Health>;
  status(options: { lag?: boolean }): Promise<unknown>;
  metricsText(): Promise<{ contentType: string; text: string }>;
}

export interface AdminServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startAdminServer(
  replicator: AdminTarget,
  options: { host: string; port: number; logger: Logger },
): Promise<AdminServer> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = "application/json") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    const path = (req.url ?? "/").split("?")[0];
    const handle = async () => {
      if (req.method !== "GET") return send(405, JSON.stringify({ error: "method not allowed" }));
      switch (path) {
        case "/healthz": {
          const health = await replicator.health();
          return send(
            health.ok ? 200 : 503,
            JSON.stringify({ status: health.ok ? "ok" : "degraded", ...health }),
          );
        }
        case "/status":
          return send(200, JSON.stringify(await replicator.status({ lag: true }), null, 2));
        case "/metrics": {
          const metrics = await replicator.metricsText();
          return send(200, metrics.text, metrics.contentType);
        }
        default:
          return send(404, JSON.stringify({ error: "not found" }));
      }
    };
    handle().catch((err: unknown) => {
      options.logger.error({ err: errorFields(err) }, "admin request failed");
      if (!res.headersSent) send(500, JSON.stringify({ error: "internal error" }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host}:${port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
