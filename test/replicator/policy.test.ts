import { expect } from "chai";
import {
  HEADERS,
  IdentityReplicationPolicy,
  PrefixedReplicationPolicy,
  readProvenance,
  routedDestinations,
  routesTo,
  withProvenance,
} from "../../replicator/policy.js";

describe("replication policy", () => {
  const src = { dc: "dc1", topic: "orders", partition: 2, offset: "41" };

  it("adds provenance to a local record and keeps the origin when forwarding", () => {
    const first = withProvenance({ app: Buffer.from("x") }, src);
    expect(first[HEADERS.originDc]).to.equal("dc1");
    expect(first[HEADERS.originTopic]).to.equal("orders");
    expect(first[HEADERS.originPartition]).to.equal("2");
    expect(first[HEADERS.originOffset]).to.equal("41");
    expect(first[HEADERS.path]).to.equal("dc1");
    expect(first.app).to.deep.equal(Buffer.from("x"));
    const second = withProvenance(first, { dc: "dc2", topic: "orders", partition: 2, offset: "7" });
    expect(readProvenance(second)).to.deep.equal({
      originDc: "dc1",
      originTopic: "orders",
      originPartition: 2,
      originOffset: "41",
      path: ["dc1", "dc2"],
    });
    expect(readProvenance({ other: "1" })).to.equal(undefined);
    // Headers as consumed from Kafka are Buffers.
    expect(readProvenance({ [HEADERS.originDc]: Buffer.from("dc3") })?.path).to.deep.equal(["dc3"]);
  });

  it("identity naming keeps the name and detects cycles from headers only", () => {
    const p = new IdentityReplicationPolicy();
    expect(p.formatTargetTopic("dc1", "orders")).to.equal("orders");
    expect(p.originOf("dc1.orders")).to.equal(undefined);
    const fromDc1 = withProvenance({}, src);
    expect(p.isCycle(undefined, "orders", "dc1")).to.equal(false);
    expect(p.isCycle(fromDc1, "orders", "dc1")).to.equal(true);
    expect(p.isCycle(fromDc1, "orders", "dc2")).to.equal(false);
    const viaDc2 = withProvenance(fromDc1, { ...src, dc: "dc2" });
    expect(p.isCycle(viaDc2, "orders", "dc2")).to.equal(true);
    expect(p.isCycle(viaDc2, "orders", "dc3")).to.equal(false);
  });

  it("prefixed naming formats <origin>.<topic> and detects cycles from the name", () => {
    const p = new PrefixedReplicationPolicy(new Set(["dc1", "dc2"]));
    expect(p.formatTargetTopic("dc1", "orders")).to.equal("dc1.orders");
    expect(p.originOf("dc1.orders")).to.equal("dc1");
    expect(p.originOf("orders.v2")).to.equal(undefined);
    expect(p.originOf(".x")).to.equal(undefined);
    expect(p.isRemoteTopic("dc2.orders")).to.equal(true);
    expect(p.isCycle(undefined, "dc2.orders", "dc2")).to.equal(true);
    expect(p.isCycle(undefined, "dc2.orders", "dc1")).to.equal(false);
    expect(p.isCycle(withProvenance({}, src), "orders", "dc1")).to.equal(true);
  });

  it("routing reads the destinations header", () => {
    expect(routedDestinations({ [HEADERS.destinations]: Buffer.from("dc2, dc3") })).to.deep.equal([
      "dc2",
      "dc3",
    ]);
    expect(routedDestinations({})).to.equal(undefined);
    expect(routesTo({ [HEADERS.destinations]: "dc2" }, "dc2", [])).to.equal(true);
    expect(routesTo({ [HEADERS.destinations]: "dc2" }, "dc3", ["dc3"])).to.equal(false);
    expect(routesTo({}, "dc3", ["dc3"])).to.equal(true);
    expect(routesTo({}, "dc3", [])).to.equal(false);
    expect(routesTo({ [HEADERS.destinations]: "" }, "dc3", ["dc3"])).to.equal(false);
  });
});
