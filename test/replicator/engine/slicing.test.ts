/** The record slicing of a pipeline: pure, no Kafka. */
import { expect } from "chai";
import type { KafkaMessage } from "kafkajs";
import { CHUNK_HEADERS } from "../../../replicator/chunking.js";
import { parseConfig } from "../../../replicator/config.js";
import { nextSlice, toRequests, type SliceOptions } from "../../../replicator/engine/slicing.js";
import { policyFor, type Pipeline } from "../../../replicator/plan.js";
import { HEADERS } from "../../../replicator/policy.js";

const config = parseConfig({
  datacenters: ["dc1", "dc2"].map((name, i) => ({ name, brokers: [`127.0.0.1:${9000 + i}`] })),
  replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
});
const pipeline: Pipeline = {
  id: "dc1/t->dc2/t",
  sourceDc: "dc1",
  sourceTopic: "t",
  destinationDc: "dc2",
  targetTopic: "t",
  model: "full",
  rule: 0,
  naming: "identity",
};

function options(overrides: Partial<SliceOptions> = {}): SliceOptions {
  return {
    pipeline,
    policy: policyFor(config, "identity"),
    sourcePartition: 3,
    targetPartition: 1,
    limits: { records: 1000, requests: 1 },
    maxBatchBytes: 100_000,
    ...overrides,
  };
}

function messages(n: number, valueBytes = 10, from = 0): KafkaMessage[] {
  return Array.from({ length: n }, (_, i): KafkaMessage => ({
    key: Buffer.from(`k${from + i}`),
    value: Buffer.alloc(valueBytes, 97),
    timestamp: String(1_700_000_000_000 + from + i),
    attributes: 0,
    offset: String(from + i),
    headers: {},
  }));
}

describe("engine/slicing", () => {
  it("a slice carries every record with provenance headers, to the target partition, in order", () => {
    const slice = nextSlice(messages(3), 0, options());
    expect(slice.end).to.equal(3);
    expect(slice.last?.offset).to.equal("2");
    expect(slice.replicable).to.equal(true);
    expect(slice.records.map((r) => r.key?.toString())).to.deep.equal(["k0", "k1", "k2"]);
    expect(slice.records.every((r) => r.partition === 1)).to.equal(true);
    expect(slice.records[1]?.headers?.[HEADERS.originDc]).to.equal("dc1");
    expect(slice.records[1]?.headers?.[HEADERS.originPartition]).to.equal("3");
    expect(slice.records[1]?.headers?.[HEADERS.originOffset]).to.equal("1");
    expect(slice.bytes).to.equal(3 * (2 + 10));
    expect(slice.timestamps).to.deep.equal([1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]);
    expect(slice.skipped).to.deep.equal([]);
  });

  it("at most `limits.records` records per slice; the next slice starts where this one ended", () => {
    const all = messages(25);
    const first = nextSlice(all, 0, options({ limits: { records: 10, requests: 1 } }));
    const second = nextSlice(all, first.end, options({ limits: { records: 10, requests: 1 } }));
    const third = nextSlice(all, second.end, options({ limits: { records: 10, requests: 1 } }));
    expect([first.end, second.end, third.end]).to.deep.equal([10, 20, 25]);
    expect(third.last?.offset).to.equal("24");
  });

  it("a slice stops before the record that would exceed `requests` × the batch limit", () => {
    const all = messages(10, 400);
    const slice = nextSlice(all, 0, options({ maxBatchBytes: 2000 }));
    expect(slice.end).to.be.greaterThan(1).and.below(10);
    const total = slice.sizes.reduce((a, b) => a + b, 0);
    expect(total).to.be.at.most(2000);
    expect(toRequests(slice.records, slice.sizes, 2000)).to.have.length(1);
  });

  it("a record over the batch limit is chunked and forms a slice of its own, cut into several requests", () => {
    const all = [...messages(1, 10), ...messages(1, 5000, 1), ...messages(1, 10, 2)];
    const first = nextSlice(all, 0, options({ maxBatchBytes: 1000 }));
    expect(first.end).to.equal(1);
    const big = nextSlice(all, first.end, options({ maxBatchBytes: 1000 }));
    expect(big.end).to.equal(2);
    expect(big.chunked).to.equal(1);
    expect(big.records.length).to.be.greaterThan(1);
    expect(big.records.every((r) => r.headers?.[CHUNK_HEADERS.id] !== undefined)).to.equal(true);
    expect(toRequests(big.records, big.sizes, 1000).length).to.equal(big.records.length);
  });

  it("a record that would close a cycle is skipped with its reason, and still moves the position", () => {
    const all = messages(2);
    all[0]!.headers = { [HEADERS.originDc]: "dc2", [HEADERS.path]: "dc2" };
    const slice = nextSlice(all, 0, options());
    expect(slice.skipped).to.deep.equal(["cycle"]);
    expect(slice.records.map((r) => r.key?.toString())).to.deep.equal(["k1"]);
    expect(slice.last?.offset).to.equal("1");
  });

  it("exactly-once resume: records below the destination's position are passed over, not replicable", () => {
    const slice = nextSlice(messages(5), 0, options({ resumeFrom: 5n }));
    expect(slice.replicable).to.equal(false);
    expect(slice.records).to.deep.equal([]);
    expect(slice.last?.offset).to.equal("4");
    const partly = nextSlice(messages(5), 0, options({ resumeFrom: 3n }));
    expect(partly.records.map((r) => r.key?.toString())).to.deep.equal(["k3", "k4"]);
  });

  it("toRequests keeps order and each request within the limit", () => {
    const records = messages(5).map((m) => ({
      key: m.key,
      value: m.value,
      partition: 0,
      timestamp: m.timestamp,
    }));
    const requests = toRequests(records, [40, 40, 40, 40, 40], 100);
    expect(requests.map((r) => r.map((m) => m.key?.toString()))).to.deep.equal([
      ["k0", "k1"],
      ["k2", "k3"],
      ["k4"],
    ]);
    expect(requests[0]?.[0]?.timestamp).to.equal("1700000000000");
  });
});
