/** Merging the health and status of a pool's engines (replicator/aggregate.ts): pure, no I/O. */
import { expect } from "chai";
import { mergeHealth, mergeStatus } from "../../replicator/aggregate.js";
import type { PipelineStatus, ReplicatorStatus } from "../../replicator/engine.js";

function pipeline(overrides: Partial<PipelineStatus>): PipelineStatus {
  return {
    id: "full:dc1:orders->dc2",
    model: "full",
    source: { datacenter: "dc1", topic: "orders", partitions: 4 },
    destination: { datacenter: "dc2", topic: "orders", partitions: 4 },
    state: "running",
    records: 0,
    bytes: 0,
    skipped: 0,
    assigned: [],
    partitions: [],
    ...overrides,
  };
}

function status(overrides: Partial<ReplicatorStatus>): ReplicatorStatus {
  return {
    id: "r",
    running: true,
    leader: false,
    discovery: { intervalMs: 1000, rounds: 3 },
    datacenters: [
      { name: "dc1", reachable: true, topics: 2 },
      { name: "dc2", reachable: true, topics: 2 },
    ],
    applications: [{ datacenter: "dc1", topic: "orders", partitions: 4 }],
    pipelines: [],
    ...overrides,
  };
}

describe("replicator pool aggregation", () => {
  it("adds up a pipeline's totals, unions its partitions and keeps each partition's furthest position", () => {
    const a = status({
      leader: true,
      pipelines: [
        pipeline({
          records: 300,
          bytes: 3000,
          skipped: 1,
          assigned: [0, 1],
          partitions: [
            { partition: 0, lastReplicatedOffset: "149", committedOffset: "150", lag: 0 },
            { partition: 1, lastReplicatedOffset: "149", committedOffset: "150", lag: 0 },
            // Owned before a rebalance: older figures than the current owner's.
            { partition: 2, lastReplicatedOffset: "9", committedOffset: "10", lag: 140 },
          ],
        }),
      ],
    });
    const b = status({
      discovery: { intervalMs: 1000, rounds: 5 },
      pipelines: [
        pipeline({
          records: 280,
          bytes: 2800,
          assigned: [3, 2],
          partitions: [
            { partition: 2, lastReplicatedOffset: "149", committedOffset: "150", lag: 0 },
            { partition: 3, lastReplicatedOffset: "129", committedOffset: "130", lag: 20 },
          ],
        }),
      ],
    });
    const merged = mergeStatus([a, b]);
    expect(merged.workers).to.equal(2);
    expect(merged.leader).to.equal(true);
    expect(merged.discovery.rounds).to.equal(5);
    expect(merged.applications).to.have.length(1);
    const [p] = merged.pipelines;
    expect(p).to.include({ records: 580, bytes: 5800, skipped: 1, state: "running" });
    expect(p?.assigned).to.deep.equal([0, 1, 2, 3]);
    expect(p?.partitions.map((x) => [x.partition, x.committedOffset, x.lag])).to.deep.equal([
      [0, "150", 0],
      [1, "150", 0],
      [2, "150", 0],
      [3, "130", 20],
    ]);
  });

  it("shows the least advanced state and any error, and is healthy only when every engine is", () => {
    const merged = mergeStatus([
      status({ pipelines: [pipeline({ state: "running" })] }),
      status({
        running: false,
        datacenters: [
          { name: "dc1", reachable: true, topics: 2 },
          { name: "dc2", reachable: false, error: "connection refused", topics: 0 },
        ],
        pipelines: [pipeline({ state: "failed", error: "no acknowledgement" })],
      }),
    ]);
    expect(merged.running).to.equal(false);
    expect(merged.pipelines[0]).to.include({ state: "failed", error: "no acknowledgement" });
    expect(merged.datacenters.find((d) => d.name === "dc2")).to.include({
      reachable: false,
      error: "connection refused",
    });
    const health = mergeHealth([
      { ok: true, datacenters: [{ name: "dc1", reachable: true }] },
      { ok: false, datacenters: [{ name: "dc1", reachable: false, error: "timeout" }] },
    ]);
    expect(health).to.deep.equal({
      ok: false,
      datacenters: [{ name: "dc1", reachable: false, error: "timeout" }],
    });
    expect(mergeHealth([]).ok).to.equal(false);
    expect(() => mergeStatus([])).to.throw("at least one status");
  });
});
