/**
 * License events over SASL_SSL: the licensing service's publisher (events.security) writes its outbox
 * to a secured datacenter's topic and the read-only replica's consumer (replica.security) applies them,
 * both configured through the service's config schema and resolved as buildRuntime does
 * (`kafkaSecurityOf`). No chain is needed: licenses are written into the outbox store directly.
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { pino } from "pino";
import { Registry } from "prom-client";
import { kafkaSecurityOf, parseConfig, sha256Hex } from "../../server/config.js";
import { EventPublisher } from "../../server/publisher.js";
import { ReplicaConsumer } from "../../server/replica.js";
import { SqliteStore, type NewLicense } from "../../server/store.js";
import { randomTopic } from "../fixtures/infra.js";
import { securedCluster, securityConfig } from "../support/secured.js";
import { randomAddress, sleep } from "./helpers.js";

function newLicense(): NewLicense {
  const id = randomUUID();
  return {
    id,
    clientId: "client",
    productId: 1,
    licensee: randomAddress(),
    expiresAt: 0,
    seats: 1,
    requestRef: keccak256(toUtf8Bytes(`license:${id}`)),
    termsHash: keccak256(toUtf8Bytes(id)),
    chainId: 31337,
    policy: "round-robin",
    reason: "test",
    candidates: [31337],
  };
}

const chains = [
  { name: "a", chainId: 31337, rpcUrl: "http://127.0.0.1:1", contract: "0x" + "cd".repeat(20) },
];
const apiKeys = [{ id: "r", sha256: sha256Hex("k"), scopes: ["licenses:read"] }];

async function waitUntil(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("server: license events over SASL_SSL (publisher → secured Kafka → replica)", function () {
  this.timeout(120_000);

  it("the replica applies every event the publisher published, over SCRAM-SHA-512 and TLS", async () => {
    const cluster = await securedCluster("sec1");
    const topic = randomTopic("licensing.events");
    const security = securityConfig(cluster);
    const primaryConfig = parseConfig({
      database: { path: ":memory:" },
      chains: chains.map((c) => ({ ...c, signer: { env: "KEY" } })),
      apiKeys,
      events: { brokers: cluster.brokers, security, topic, datacenter: "dc1", pollMs: 50, partitions: 2 },
    });
    const replicaConfig = parseConfig({
      mode: "replica",
      database: { path: ":memory:" },
      chains,
      apiKeys,
      replica: {
        brokers: cluster.brokers,
        security,
        topics: [topic],
        groupId: randomTopic("replica"),
        topicCheckMs: 200,
      },
    });
    const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
    const primaryStore = new SqliteStore(":memory:", {
      events: { origin: "dc1", contractOf: () => chains[0]!.contract },
    });
    const replicaStore = new SqliteStore(":memory:");
    const publisher = new EventPublisher(
      primaryStore,
      primaryConfig.events!,
      logger,
      new Registry(),
      kafkaSecurityOf(primaryConfig.events!.security, "events.security", process.env),
    );
    const replica = new ReplicaConsumer(
      replicaStore,
      replicaConfig.replica!,
      logger,
      new Registry(),
      kafkaSecurityOf(replicaConfig.replica!.security, "replica.security", process.env),
    );
    try {
      const licenses = Array.from({ length: 20 }, newLicense);
      for (const [i, license] of licenses.entries()) {
        primaryStore.insertLicense(license, { key: `k${i}`, bodyHash: `h${i}` });
      }
      expect(primaryStore.eventBacklog()).to.equal(20);
      publisher.start();
      replica.start();
      await waitUntil("the outbox to drain", () => publisher.backlog() === 0);
      await waitUntil("the replica to apply 20 events", () => replicaStore.appliedEventCount() >= 20);
      expect(replica.counts).to.include({ applied: 20, invalid: 0 });
      expect(replica.topics()).to.deep.equal([topic]);
    } finally {
      await publisher.stop();
      await replica.stop();
      primaryStore.close();
      replicaStore.close();
    }
  });
});
