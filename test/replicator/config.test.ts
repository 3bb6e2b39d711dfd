import { expect } from "chai";
import {
  isDiscoverable,
  loadConfigFile,
  parseConfig,
  parseConfigText,
  resolveWorkers,
} from "../../replicator/config.js";
import { ConfigError } from "../../replicator/errors.js";

const dcs = [
  { name: "dc1", brokers: ["127.0.0.1:9092"] },
  { name: "dc2", brokers: ["127.0.0.1:9093"] },
  { name: "dc3", brokers: ["127.0.0.1:9094"] },
];

function configError(input: unknown): ConfigError {
  try {
    parseConfig(input);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  expect.fail("configuration was accepted");
}

describe("replicator config", () => {
  it("accepts a minimal configuration and fills defaults", () => {
    const cfg = parseConfig({
      datacenters: dcs,
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    expect(cfg.discovery.intervalMs).to.equal(1000);
    expect(cfg.discovery.include).to.deep.equal([".*"]);
    expect(cfg.naming).to.equal("identity");
    expect(cfg.replicator.id).to.equal("replicator");
    expect(cfg.replicator.admin).to.deep.equal({ host: "127.0.0.1", port: 0 });
    const rule = cfg.replication[0];
    expect(rule?.model === "full" && rule.topics).to.deep.equal([".*"]);
  });

  it("resolves replicator.workers: auto is one per core up to 4, under either delivery", () => {
    const base = {
      datacenters: dcs,
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    };
    const auto = parseConfig(base);
    expect(auto.replicator.workers).to.equal("auto");
    expect([1, 2, 3, 8].map((cpus) => resolveWorkers(auto, cpus))).to.deep.equal([1, 2, 3, 4]);
    const three = parseConfig({ ...base, replicator: { workers: 3 } });
    expect(resolveWorkers(three, 2)).to.equal(3);
    const eos = parseConfig({ ...base, replicator: { delivery: "exactly-once" } });
    expect([1, 2, 8].map((cpus) => resolveWorkers(eos, cpus))).to.deep.equal([1, 2, 4]);
    const eosTwo = parseConfig({ ...base, replicator: { delivery: "exactly-once", workers: 2 } });
    expect(resolveWorkers(eosTwo, 1)).to.equal(2);
    expect(configError({ ...base, replicator: { workers: 0 } }).issues.join("\n")).to.contain(
      "replicator.workers",
    );
  });

  it("error policy: stop by default, dead-letter per rule with its topic; bad values name the field", () => {
    const rule = { model: "full", sources: ["dc1"], destinations: ["dc2"] };
    const cfg = parseConfig({
      datacenters: dcs,
      replication: [
        rule,
        {
          ...rule,
          sources: ["dc2"],
          destinations: ["dc3"],
          errorPolicy: "dead-letter",
          deadLetterTopic: "x.dlq",
        },
      ],
    });
    expect(cfg.replicator.errorPolicy).to.equal("stop");
    expect(cfg.replication[0]!.errorPolicy).to.equal(undefined);
    expect(cfg.replication[1]).to.include({ errorPolicy: "dead-letter", deadLetterTopic: "x.dlq" });
    const err = configError({
      datacenters: dcs,
      replicator: { errorPolicy: "skip" },
      replication: [{ ...rule, deadLetterTopic: "bad topic" }],
    });
    const text = err.issues.join("\n");
    expect(text).to.contain("replicator.errorPolicy:");
    expect(text).to.contain("replication[0].deadLetterTopic:");
  });

  it("names an unknown destination datacenter by its field path", () => {
    const err = configError({
      datacenters: dcs,
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2", "dc9"] }],
    });
    expect(err.code).to.equal("CONFIG_INVALID");
    expect(err.issues).to.deep.equal(["replication[0].destinations[1]: unknown datacenter 'dc9'"]);
    expect(err.message).to.contain("replication[0].destinations[1]: unknown datacenter 'dc9'");
  });

  it("names bad brokers, bad regexes, unknown models and unknown keys", () => {
    const err = configError({
      datacenters: [{ name: "dc1", brokers: ["nohostport"] }, ...dcs.slice(1)],
      discovery: { include: ["(unclosed"] },
      replication: [
        { model: "mirror", sources: ["dc1"], destinations: ["dc2"] },
        { model: "full", sources: ["dc2"], destinations: ["dc3"], typo: 1 },
      ],
    });
    const text = err.issues.join("\n");
    expect(text).to.match(/^datacenters\[0\]\.brokers\[0\]: a broker is host:port$/m);
    expect(text).to.match(/^discovery\.include\[0\]: invalid regular expression '\(unclosed'/m);
    expect(text).to.match(/^replication\[0\]\.model: /m);
    expect(text).to.match(/^replication\[1\]: Unrecognized key\(s\) in object: 'typo'$/m);
  });

  it("rejects duplicate datacenters, overlapping sources and destinations, and bad group destinations", () => {
    const err = configError({
      datacenters: [...dcs, { name: "dc1", brokers: ["h:1"] }],
      replication: [
        { model: "full", sources: ["dc1"], destinations: ["dc1"] },
        {
          model: "groups",
          sources: ["dc1"],
          groups: [{ name: "g", topics: ["a.*"], destinations: ["dc7"] }],
        },
        { model: "routing", sources: ["dc1"], destinations: ["dc2"], defaultDestinations: ["dc3"] },
        { model: "active-active", datacenters: ["dc1"] },
      ],
    });
    expect(err.issues).to.include("datacenters[3].name: duplicate datacenter 'dc1'");
    expect(err.issues).to.include(
      "replication[0].destinations[0]: 'dc1' is also a source (use model active-active for bidirectional replication)",
    );
    expect(err.issues).to.include("replication[1].groups[0].destinations[0]: unknown datacenter 'dc7'");
    expect(err.issues).to.include(
      "replication[2].defaultDestinations[0]: 'dc3' is not one of the rule's destinations",
    );
    expect(err.issues.some((i) => i.startsWith("replication[3].datacenters: "))).to.equal(true);
  });

  it("reports missing required fields", () => {
    const err = configError({ replication: "all" });
    expect(err.issues).to.include("datacenters: Required");
    expect(err.issues).to.include("replication: Expected array, received string");
    const nothing = configError({ datacenters: dcs, registry: { enabled: false } });
    expect(nothing.issues).to.deep.equal([
      "replication: no replication rule and the registry is disabled: nothing to replicate",
    ]);
  });

  it("parses YAML and refuses text that is not YAML", () => {
    const cfg = parseConfigText(
      [
        "datacenters:",
        "  - { name: dc1, brokers: ['127.0.0.1:1'] }",
        "  - { name: dc2, brokers: ['127.0.0.1:2'] }",
        "discovery: { intervalMs: 500, exclude: ['tmp-.*'] }",
        "replication:",
        "  - model: active-active",
        "    datacenters: [dc1, dc2]",
        "    naming: prefixed",
      ].join("\n"),
    );
    expect(cfg.discovery.intervalMs).to.equal(500);
    expect(cfg.replication[0]?.model).to.equal("active-active");
    expect(() => parseConfigText("a: [1, 2", "bad.yaml")).to.throw(ConfigError, /bad\.yaml: not valid YAML/);
  });

  it("always excludes internal and own topics; patterns match whole names", () => {
    const d = { intervalMs: 1000, include: ["orders.*", "pay"], exclude: ["orders-tmp"] };
    expect(isDiscoverable("orders-1", d)).to.equal(true);
    expect(isDiscoverable("pay", d)).to.equal(true);
    expect(isDiscoverable("my-pay", d)).to.equal(false);
    expect(isDiscoverable("orders-tmp", d)).to.equal(false);
    const all = { intervalMs: 1000, include: [".*"], exclude: [] };
    expect(isDiscoverable("__consumer_offsets", all)).to.equal(false);
    expect(isDiscoverable("__transaction_state", all)).to.equal(false);
    expect(isDiscoverable("lp.replicator.registry", all)).to.equal(false);
    expect(isDiscoverable("app", all)).to.equal(true);
  });

  it("the example configuration is valid", () => {
    const cfg = loadConfigFile(new URL("../../replicator/example.yaml", import.meta.url).pathname);
    expect(cfg.replication.map((r) => r.model)).to.deep.equal([
      "full",
      "groups",
      "routing",
      "merge",
      "active-active",
    ]);
    expect(() => loadConfigFile("/nonexistent/replicator.yaml")).to.throw(ConfigError, /cannot read/);
  });
});
