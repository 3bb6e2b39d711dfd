import { expect } from "chai";
import { parseConfig } from "../../replicator/config.js";
import { ConfigError } from "../../replicator/errors.js";
import { planPipelines } from "../../replicator/plan.js";
import { parseRegistration, type Registration } from "../../replicator/registry.js";

describe("registration (pure)", () => {
  it("parses a registration, a tombstone, and names the bad field", () => {
    const ok = parseRegistration(
      "orders",
      Buffer.from(JSON.stringify({ topic: "orders", destinations: ["dc2"] })),
    );
    expect(ok.registration).to.deep.equal({
      topic: "orders",
      model: "full",
      destinations: ["dc2"],
      defaultDestinations: [],
    });
    expect(parseRegistration("orders", null)).to.deep.equal({ topic: "orders", registration: null });
    const bad = (value: string) => {
      try {
        parseRegistration("orders", value);
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        return (err as ConfigError).issues;
      }
      return expect.fail("accepted");
    };
    expect(bad(JSON.stringify({ topic: "orders", destinations: [] }))[0]).to.match(
      /^registration 'orders'\.destinations: /,
    );
    expect(bad(JSON.stringify({ topic: "other", destinations: ["dc2"] }))).to.deep.equal([
      "registration 'orders'.topic: 'other' differs from the record key",
    ]);
    expect(bad("{not json")[0]).to.match(/^registration 'orders': not JSON/);
  });

  it("plans registered applications first, bypassing discovery patterns", () => {
    const cfg = parseConfig({
      datacenters: ["dc1", "dc2", "dc3"].map((name, i) => ({ name, brokers: [`h:${i + 1}`] })),
      discovery: { include: ["nothing"] },
      replication: [{ model: "full", topics: [".*"], sources: ["dc1"], destinations: ["dc2"] }],
    });
    const reg: Registration = {
      topic: "billing",
      group: "finance",
      model: "full",
      destinations: ["dc3", "dc9"],
      defaultDestinations: [],
    };
    const plan = planPipelines(
      { dc1: ["billing", "unregistered"] },
      cfg,
      new Map([["dc1", new Map([["billing", reg]])]]),
    );
    // dc9 is unknown and ignored; "unregistered" does not match the include pattern.
    expect(plan.map((p) => `${p.id}:${p.group}:${p.rule}`)).to.deep.equal([
      "dc1/billing->dc3/billing:finance:-1",
    ]);
    // A registration for a topic that does not exist (yet) plans nothing.
    expect(planPipelines({ dc1: [] }, cfg, new Map([["dc1", new Map([["billing", reg]])]]))).to.deep.equal(
      [],
    );
  });
});
