/** The replicator's error catalogue and its error classes. */
import { expect } from "chai";
import { PlatformError } from "../../common/errors.js";
import { parseConfig } from "../../replicator/config.js";
import { ConfigError, REPLICATOR_ERRORS, ReplicatorError } from "../../replicator/errors.js";
import { parseRegistration } from "../../replicator/registry.js";

describe("replicator errors", () => {
  it("a ReplicatorError is a PlatformError whose retriable comes from the catalogue unless overridden", () => {
    const waiting = new ReplicatorError("WAITING_FOR_LEADER", "later");
    expect(waiting).to.be.instanceOf(PlatformError);
    expect(waiting.retriable).to.equal(REPLICATOR_ERRORS.WAITING_FOR_LEADER.retriable).and.equal(true);
    expect(new ReplicatorError("WORKER_FAILED", "x").retriable).to.equal(false);
    expect(new ReplicatorError("WORKER_FAILED", "x", { retriable: true }).retriable).to.equal(true);
    for (const spec of Object.values(REPLICATOR_ERRORS)) expect(spec.description).to.match(/\S/);
  });

  it("a configuration error names the first issue's field in the one path style", () => {
    let caught: unknown;
    try {
      parseConfig({
        datacenters: [{ name: "dc1", brokers: ["h:1"] }],
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc1", "dc9"] }],
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.code).to.equal("CONFIG_INVALID");
    expect(err.field).to.equal("replication[0].destinations[1]");
    expect(err.issues[0]).to.equal("replication[0].destinations[1]: unknown datacenter 'dc9'");
  });

  it("an invalid registration names its field too", () => {
    let caught: unknown;
    try {
      parseRegistration("orders", JSON.stringify({ topic: "orders", destinations: [] }));
    } catch (err) {
      caught = err;
    }
    expect((caught as ConfigError).field).to.equal("destinations");
  });
});
