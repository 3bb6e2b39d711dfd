import { expect } from "chai";
import { parseConfig } from "../../replicator/config.js";
import { decideRecord, planPipelines, policyFor } from "../../replicator/plan.js";
import { HEADERS, withProvenance } from "../../replicator/policy.js";

const datacenters = ["dc1", "dc2", "dc3"].map((name, i) => ({ name, brokers: [`127.0.0.1:${9000 + i}`] }));
const brief = (p: { sourceDc: string; sourceTopic: string; destinationDc: string; targetTopic: string }) =>
  `${p.sourceDc}/${p.sourceTopic}->${p.destinationDc}/${p.targetTopic}`;

describe("replication plan", () => {
  const discovered = {
    dc1: ["orders", "pay", "__consumer_offsets", "lp.replicator.registry", "tmp-x"],
    dc2: ["orders", "dc1.orders", "stock"],
    dc3: [],
  };

  it("full model: every selected local topic of each source to every destination", () => {
    const cfg = parseConfig({
      datacenters,
      discovery: { exclude: ["tmp-.*"] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2", "dc3"] }],
    });
    expect(planPipelines(discovered, cfg).map(brief)).to.deep.equal([
      "dc1/orders->dc2/orders",
      "dc1/orders->dc3/orders",
      "dc1/pay->dc2/pay",
      "dc1/pay->dc3/pay",
    ]);
  });

  it("prefixed naming, and a replicator restricted to its own destination datacenter", () => {
    const cfg = parseConfig({
      datacenters,
      naming: "prefixed",
      replicator: { datacenter: "dc3" },
      replication: [{ model: "full", topics: ["orders"], sources: ["dc1", "dc2"], destinations: ["dc3"] }],
    });
    // dc2's "dc1.orders" is a replica, never a source under prefixed naming.
    expect(planPipelines(discovered, cfg).map(brief)).to.deep.equal([
      "dc1/orders->dc3/dc1.orders",
      "dc2/orders->dc3/dc2.orders",
    ]);
  });

  it("logical groups: each group to its own destinations, first matching group wins", () => {
    const cfg = parseConfig({
      datacenters,
      replication: [
        {
          model: "groups",
          sources: ["dc1"],
          groups: [
            { name: "sales", topics: ["orders", "pay"], destinations: ["dc2"] },
            { name: "all", topics: [".*"], destinations: ["dc3"] },
          ],
        },
      ],
    });
    const plan = planPipelines(discovered, cfg);
    expect(plan.map(brief)).to.deep.equal([
      "dc1/orders->dc2/orders",
      "dc1/pay->dc2/pay",
      "dc1/tmp-x->dc3/tmp-x",
    ]);
    expect(plan[0]?.group).to.equal("sales");
  });

  it("merge: the same stream from several sources into one stream per destination", () => {
    const cfg = parseConfig({
      datacenters,
      replication: [{ model: "merge", topics: ["orders"], sources: ["dc1", "dc2"], destinations: ["dc3"] }],
    });
    expect(planPipelines(discovered, cfg).map(brief)).to.deep.equal([
      "dc1/orders->dc3/orders",
      "dc2/orders->dc3/orders",
    ]);
  });

  it("active-active: every ordered pair, and the first rule wins on overlap", () => {
    const cfg = parseConfig({
      datacenters,
      replication: [
        { model: "active-active", topics: ["orders"], datacenters: ["dc1", "dc2"] },
        { model: "full", sources: ["dc1"], destinations: ["dc2"] },
      ],
    });
    const plan = planPipelines(discovered, cfg);
    expect(plan.map((p) => `${brief(p)}:${p.model}`)).to.deep.equal([
      "dc1/orders->dc2/orders:active-active",
      "dc1/pay->dc2/pay:full",
      "dc1/tmp-x->dc2/tmp-x:full",
      "dc2/orders->dc1/orders:active-active",
    ]);
  });

  it("decides per record: cycles, local-only for active-active, routing", () => {
    const cfg = parseConfig({
      datacenters,
      replication: [
        { model: "active-active", topics: ["orders"], datacenters: ["dc1", "dc2", "dc3"] },
        { model: "routing", topics: ["pay"], sources: ["dc1"], destinations: ["dc2", "dc3"] },
        { model: "full", topics: ["stock"], sources: ["dc2"], destinations: ["dc1"] },
      ],
    });
    const plan = planPipelines(discovered, cfg);
    const find = (id: string) => {
      const p = plan.find((x) => brief(x) === id);
      if (!p) expect.fail(`no pipeline ${id}`);
      return p;
    };
    const identity = policyFor(cfg, "identity");
    const aa = find("dc1/orders->dc2/orders");
    expect(decideRecord(aa, identity, {})).to.equal("send");
    const fromDc2 = withProvenance({}, { dc: "dc2", topic: "orders", partition: 0, offset: "1" });
    expect(decideRecord(aa, identity, fromDc2)).to.equal("cycle");
    const fromDc3 = withProvenance({}, { dc: "dc3", topic: "orders", partition: 0, offset: "1" });
    expect(decideRecord(aa, identity, fromDc3)).to.equal("not-local");
    const toDc3 = find("dc1/pay->dc3/pay");
    expect(decideRecord(toDc3, identity, { [HEADERS.destinations]: "dc2,dc3" })).to.equal("send");
    expect(decideRecord(toDc3, identity, { [HEADERS.destinations]: "dc2" })).to.equal("unrouted");
    expect(decideRecord(toDc3, identity, {})).to.equal("unrouted");
    const full = find("dc2/stock->dc1/stock");
    expect(decideRecord(full, identity, fromDc3)).to.equal("send");
    expect(
      decideRecord(
        full,
        identity,
        withProvenance({}, { dc: "dc1", topic: "stock", partition: 0, offset: "1" }),
      ),
    ).to.equal("cycle");
  });
});
