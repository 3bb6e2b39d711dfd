/**
 * The dashboard's replication summary (server/replication-view.ts): the config it reads, the latency
 * parsed from a real replicator metrics registry's Prometheus text, and the /status summary.
 */
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createMetrics } from "../../replicator/metrics.js";
import { parseConfig, sha256Hex } from "../../server/config.js";
import { AppError } from "../../server/errors.js";
import {
  cachedReplicationReport,
  latencyFromMetrics,
  replicationReport,
  summarizeStatus,
} from "../../server/replication-view.js";

/** An HTTP server answering `/status` and `/metrics` as `answer` says; counts the `/status` reads. */
async function adminLike(
  answer: (path: string) => { status: number; body: string },
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === "/status") hits++;
    const { status, body } = answer(req.url ?? "/");
    res.writeHead(status, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function withDashboard(dashboard: unknown): unknown {
  return {
    database: { path: ":memory:" },
    chains: [{ name: "a", chainId: 1, rpcUrl: "http://127.0.0.1:8545", signer: { env: "KEY_A" } }],
    apiKeys: [{ id: "viewer", sha256: sha256Hex("k"), scopes: ["platform:read"] }],
    ...(dashboard === undefined ? {} : { dashboard }),
  };
}

function fieldOf(raw: unknown): string | undefined {
  try {
    parseConfig(raw);
  } catch (error) {
    expect(error).to.be.instanceOf(AppError);
    return (error as AppError).field;
  }
  return undefined;
}

describe("server: the dashboard's replication summary", function () {
  it("config: no replicators by default; http(s) URLs only, the field named", function () {
    expect(parseConfig(withDashboard(undefined)).dashboard).to.deep.equal({
      replicators: [],
      timeoutMs: 2000,
    });
    const ok = parseConfig(
      withDashboard({ replicators: [{ datacenter: "dc2", url: "http://127.0.0.1:9102" }] }),
    );
    expect(ok.dashboard.replicators).to.deep.equal([{ datacenter: "dc2", url: "http://127.0.0.1:9102" }]);
    expect(fieldOf(withDashboard({ replicators: [{ datacenter: "dc2", url: "ftp://x" }] }))).to.equal(
      "dashboard.replicators[0].url",
    );
    expect(fieldOf(withDashboard({ replicators: [{ datacenter: "DC 2", url: "http://x" }] }))).to.equal(
      "dashboard.replicators[0].datacenter",
    );
    expect(fieldOf(withDashboard({ replicators: [], extra: 1 }))).to.equal("dashboard");
  });

  it("latency: mean and p95 bucket per destination from a replicator's real histogram", async function () {
    const metrics = createMetrics();
    for (let i = 0; i < 19; i++) metrics.latency.observe({ destination: "dc2" }, 0.04);
    metrics.latency.observe({ destination: "dc2" }, 3);
    metrics.latency.observe({ destination: "dc3" }, 0.2);
    const latency = latencyFromMetrics(await metrics.registry.metrics());
    const dc2 = latency.find((l) => l.destination === "dc2")!;
    expect(dc2.count).to.equal(20);
    expect(dc2.meanSeconds).to.be.closeTo((19 * 0.04 + 3) / 20, 1e-9);
    expect(dc2.p95Seconds).to.equal(0.05); // 19 of 20 (95 %) are in the 0.05 s bucket
    expect(latency.find((l) => l.destination === "dc3")).to.deep.include({ count: 1, p95Seconds: 0.25 });
    expect(latencyFromMetrics("")).to.deep.equal([]);
  });

  it("status: pipelines with their summed lag (null when unknown) and the discovery's age", function () {
    const summary = summarizeStatus(
      {
        id: "r1",
        running: true,
        leader: false,
        discovery: { lastRoundAt: "2026-01-01T00:00:00.000Z" },
        datacenters: [{ name: "dc1", reachable: true }],
        pipelines: [
          {
            id: "p1",
            state: "running",
            records: 7,
            source: { datacenter: "dc1", topic: "t" },
            destination: { datacenter: "dc2", topic: "t" },
            partitions: [{ lag: 2 }, { lag: 3 }],
          },
          { id: "p2", state: "failed", error: "boom", partitions: [{}] },
        ],
      },
      Date.parse("2026-01-01T00:00:01.500Z"),
    );
    expect(summary).to.deep.include({ id: "r1", running: true, leader: false, lastRoundAgeMs: 1500 });
    expect(summary.pipelines).to.deep.equal([
      { id: "p1", source: "dc1/t", destination: "dc2/t", state: "running", records: 7, lag: 5 },
      { id: "p2", source: "/", destination: "/", state: "failed", error: "boom", records: 0, lag: null },
    ]);
  });

  it("reads over HTTP: a failing or malformed admin API is unreachable with a short reason; reads are shared", async function () {
    const ok = await adminLike((p) =>
      p === "/status"
        ? { status: 200, body: JSON.stringify({ id: "r", running: true, pipelines: [] }) }
        : { status: 200, body: "" },
    );
    const failing = await adminLike(() => ({ status: 503, body: "{}" }));
    const malformed = await adminLike(() => ({ status: 200, body: "not json" }));
    try {
      const config = {
        timeoutMs: 2000,
        replicators: [
          { datacenter: "dc1", url: ok.url },
          { datacenter: "dc2", url: failing.url },
          { datacenter: "dc3", url: malformed.url },
        ],
      };
      const report = await replicationReport(config);
      expect(report.configured).to.equal(3);
      expect(report.replicators[0]).to.deep.include({
        datacenter: "dc1",
        reachable: true,
        id: "r",
        running: true,
      });
      expect(report.replicators.slice(1)).to.deep.equal([
        { datacenter: "dc2", reachable: false, error: "HTTP 503" },
        { datacenter: "dc3", reachable: false, error: "invalid /status document" },
      ]);
      const cached = cachedReplicationReport({ timeoutMs: 2000, replicators: [config.replicators[0]!] }, 300);
      const before = ok.hits();
      await Promise.all([cached(), cached(), cached()]);
      expect(ok.hits() - before).to.equal(1);
      await new Promise((resolve) => setTimeout(resolve, 350));
      await cached();
      expect(ok.hits() - before).to.equal(2);
    } finally {
      await Promise.all([ok.close(), failing.close(), malformed.close()]);
    }
  });
});
