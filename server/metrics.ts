/** Prometheus metrics of one service instance (own registry, so tests can run several apps). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  accepted: Counter<"chain">;
  confirmed: Counter<"chain">;
  failed: Counter<"chain" | "code">;
  txErrors: Counter<"chain" | "kind">;
  feeBumps: Counter<"chain">;
  issueLatency: Histogram<"chain">;
  batchSize: Histogram<"chain">;
  queueDepth: Gauge<"chain">;
  chainUp: Gauge<"chain">;
  rpcRequests: Counter<"chain" | "method">;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: "license_http_requests_total",
      help: "HTTP requests by method, route and status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    accepted: new Counter({
      name: "license_accepted_total",
      help: "Licenses accepted per chain",
      labelNames: ["chain"],
      registers,
    }),
    confirmed: new Counter({
      name: "license_confirmed_total",
      help: "Licenses confirmed on-chain",
      labelNames: ["chain"],
      registers,
    }),
    failed: new Counter({
      name: "license_failed_total",
      help: "Licenses that failed",
      labelNames: ["chain", "code"],
      registers,
    }),
    txErrors: new Counter({
      name: "license_tx_errors_total",
      help: "Transaction errors by kind",
      labelNames: ["chain", "kind"],
      registers,
    }),
    feeBumps: new Counter({
      name: "license_fee_bumps_total",
      help: "Stuck transactions replaced with higher fees",
      labelNames: ["chain"],
      registers,
    }),
    issueLatency: new Histogram({
      name: "license_issue_latency_seconds",
      help: "Accept to on-chain confirmation",
      labelNames: ["chain"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    batchSize: new Histogram({
      name: "license_batch_size",
      help: "Licenses per issueBatch transaction",
      labelNames: ["chain"],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200],
      registers,
    }),
    queueDepth: new Gauge({
      name: "license_queue_depth",
      help: "Accepted or submitted, not yet confirmed",
      labelNames: ["chain"],
      registers,
    }),
    chainUp: new Gauge({
      name: "license_chain_up",
      help: "1 when the chain's health probe passes",
      labelNames: ["chain"],
      registers,
    }),
    rpcRequests: new Counter({
      name: "license_rpc_requests_total",
      help: "JSON-RPC requests sent to a chain's node, by method (each call of a JSON-RPC batch counts)",
      labelNames: ["chain", "method"],
      registers,
    }),
  };
}
