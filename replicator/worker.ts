/**
 * Worker-thread entry of a replication engine (started by ./pool.ts): one `Replicator` with the pool's
 * configuration, answering the pool's requests (status, health, metrics, configuration, stop).
 */
import { parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { Replicator } from "./engine.js";
import { createMetrics } from "./metrics.js";
import type { ReplicatorConfig } from "./config.js";
import type { PoolRequest, PoolReply, WorkerData } from "./pool.js";

const port = parentPort;
if (!port) throw new Error("replicator/worker.ts runs in a worker thread (see replicator/pool.ts)");
const data = workerData as WorkerData;
const logger = pino({ level: data.logLevel, base: { pid: process.pid, worker: data.index } });
const replicator = new Replicator(data.config, { logger, metrics: createMetrics() });

function reply(message: PoolReply): void {
  port!.postMessage(message);
}

async function handle(request: PoolRequest): Promise<unknown> {
  switch (request.op) {
    case "status":
      return replicator.status({ lag: request.lag });
    case "health":
      return replicator.health();
    case "metrics":
      return replicator.metrics.registry.getMetricsAsJSON();
    case "config":
      replicator.updateConfig(request.config as ReplicatorConfig);
      return null;
    case "stop":
      await replicator.stop();
      return null;
  }
}

port.on("message", (request: PoolRequest) => {
  handle(request).then(
    (result) => reply({ id: request.id, ok: true, result }),
    (err: unknown) =>
      reply({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

replicator.start().then(
  () => reply({ event: "started" }),
  (err: unknown) => reply({ event: "failed", error: err instanceof Error ? err.message : String(err) }),
);
