/**
 * Worker-thread entry of a replication engine (started by ./pool.ts): one `LocalEngine` with the pool's
 * configuration, answering the pool's requests (status, health, metrics, configuration, stop).
 */
import { parentPort, workerData } from "node:worker_threads";
import { installKafkajsPatches } from "../kafka/patches/index.js";
import { ReplicatorError } from "./errors.js";
import { createLogger, errorText } from "../common/log.js";
import { LocalEngine, type PoolReply, type PoolRequest, type WorkerData } from "./pool.js";

const port = parentPort;
if (!port)
  throw new ReplicatorError(
    "NOT_A_WORKER",
    "replicator/worker.ts runs in a worker thread (see replicator/pool.ts)",
  );
const data = workerData as WorkerData;
// Patches are per thread (each worker loads its own kafkajs); the main thread already logged the report.
installKafkajsPatches();
const engine = new LocalEngine(
  data.config,
  createLogger({ level: data.logLevel, base: { pid: process.pid } }),
  data.index,
  data.count,
);

function reply(message: PoolReply): void {
  port!.postMessage(message);
}

async function handle(request: PoolRequest): Promise<unknown> {
  switch (request.op) {
    case "status":
      return engine.status(request.lag);
    case "health":
      return engine.health();
    case "metrics":
      return engine.metrics();
    case "config":
      return engine.updateConfig(request.config);
    case "stop":
      return engine.stop();
  }
}

port.on("message", (request: PoolRequest) => {
  handle(request).then(
    (result) => reply({ id: request.id, ok: true, result }),
    (err: unknown) => reply({ id: request.id, ok: false, error: errorText(err) }),
  );
});

engine.start().then(
  () => reply({ event: "started" }),
  (err: unknown) => reply({ event: "failed", error: errorText(err) }),
);
