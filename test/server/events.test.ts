/**
 * License lifecycle events: the outbox (unit, SQLite in memory) and the publisher against the real
 * Kafka datacenter dc1 and the three shared chains (signer: dev account 9, fresh contracts).
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import request from "supertest";
import { getChains, getKafka, randomTopic } from "../fixtures/infra.js";
import { parseConfig, type Config } from "../../server/config.js";
import { EVENT_SCHEMA_VERSION, parseEvent, type LicenseEvent } from "../../server/events.js";
import type { Runtime } from "../../server/index.js";
import { SqliteStore, type NewLicense } from "../../server/store.js";
import { closedPort, partitionCount, readTopic, type ReadRecord } from "./kafka-helpers.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(9);

function newLicense(chainId = 31337): NewLicense {
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
    chainId,
    policy: "round-robin",
    reason: "test",
    candidates: [chainId],
  };
}

describe("server: lifecycle events outbox (node:sqlite, in memory)", function () {
  let store: SqliteStore;
  const contract = "0x" + "cd".repeat(20);
  beforeEach(
    () => (store = new SqliteStore(":memory:", { events: { origin: "dc1", contractOf: () => contract } })),
  );
  afterEach(() => store.close());

  it("writes one event per committed change, none for no-ops or idempotent replays", function () {
    const a = newLicense();
    const b = newLicense();
    store.insertLicense(a, { key: "k1", bodyHash: "h1" });
    store.insertLicense({ ...newLicense(), id: randomUUID() }, { key: "k1", bodyHash: "h1" }); // replay
    store.insertLicense(b);
    store.createBatch({
      id: "b1",
      chainId: 31337,
      nonce: 0,
      txHash: "0x01",
      rawTx: "0x",
      licenseIds: [a.id],
    });
    const txHash = "0x" + "ab".repeat(32);
    store.settleBatch("b1", new Map([[a.id, { tokenId: "7", txHash, blockNumber: 12 }]]), "done");
    store.setRevoked(a.id);
    store.setRevoked(a.id); // already revoked: no change, no event
    store.fail([b.id], "CHAIN_TX_FAILED", "reverted");
    store.fail([b.id], "CHAIN_TX_FAILED", "reverted"); // already failed
    const events = store.unpublishedEvents(100).map((e) => e.event);
    expect(events.map((e) => [e.licenseId, e.type])).to.deep.equal([
      [a.id, "requested"],
      [b.id, "requested"],
      [a.id, "issued"],
      [a.id, "revoked"],
      [b.id, "failed"],
    ]);
    const issued = events[2]!;
    expect(issued).to.include({ schemaVersion: EVENT_SCHEMA_VERSION, origin: "dc1", type: "issued" });
    expect(issued.license).to.include({
      id: a.id,
      status: "confirmed",
      chainId: 31337,
      contract,
      tokenId: "7",
      txHash,
      blockNumber: 12,
      licensee: a.licensee,
      productId: 1,
      policy: "round-robin",
      revoked: false,
    });
    expect(events[3]!.license.revoked).to.equal(true);
    expect(events[4]!.license.error).to.deep.equal({ code: "CHAIN_TX_FAILED", message: "reverted" });
    expect(new Set(events.map((e) => e.eventId)).size).to.equal(5);
    // the sequence is the outbox position: increasing in commit order
    const sequences = events.map((e) => e.sequence);
    expect(sequences).to.deep.equal([...sequences].sort((x, y) => x - y));
    for (const e of events) expect(parseEvent(JSON.stringify(e)).eventId).to.equal(e.eventId);

    expect(store.eventBacklog()).to.equal(5);
    store.markPublished(store.unpublishedEvents(2).map((e) => e.seq));
    expect(store.eventBacklog()).to.equal(3);
    expect(store.unpublishedEvents(100).map((e) => e.event.type)).to.deep.equal([
      "issued",
      "revoked",
      "failed",
    ]);
  });

  it("rolls back the change when its event cannot be written (one transaction)", function () {
    const failing = new SqliteStore(":memory:", {
      events: {
        origin: "dc1",
        contractOf: (chainId) => {
          if (chainId === 999) throw new Error("no contract for chain 999");
          return contract;
        },
      },
    });
    try {
      const lost = newLicense(999);
      expect(() => failing.insertLicense(lost, { key: "k", bodyHash: "h" })).to.throw(/chain 999/);
      expect(failing.getLicense(lost.id)).to.equal(undefined);
      expect(failing.findIdempotent("client", "k")).to.equal(undefined);
      expect(failing.eventBacklog()).to.equal(0);
      const kept = newLicense();
      failing.insertLicense(kept);
      expect(failing.unpublishedEvents(10).map((e) => e.licenseId)).to.deep.equal([kept.id]);
    } finally {
      failing.close();
    }
  });

  it("records no events without the events option", function () {
    const plain = new SqliteStore(":memory:");
    try {
      plain.insertLicense(newLicense());
      expect(plain.eventBacklog()).to.equal(0);
    } finally {
      plain.close();
    }
  });

  it("applies replicated events once per id, the newest change per license winning", function () {
    const a = newLicense();
    store.insertLicense(a);
    const revokeAndFail = (): void => {
      store.createBatch({
        id: "b1",
        chainId: 31337,
        nonce: 0,
        txHash: "0x01",
        rawTx: "0x",
        licenseIds: [a.id],
      });
      store.settleBatch(
        "b1",
        new Map([[a.id, { tokenId: "3", txHash: "0x" + "12".repeat(32), blockNumber: 5 }]]),
        "done",
      );
      store.setRevoked(a.id);
    };
    revokeAndFail();
    const [requested, issued, revoked] = store.unpublishedEvents(10).map((e) => e.event) as [
      LicenseEvent,
      LicenseEvent,
      LicenseEvent,
    ];
    const replica = new SqliteStore(":memory:");
    try {
      expect(replica.applyEvent(requested)).to.equal("applied");
      expect(replica.applyEvent(revoked)).to.equal("applied");
      // out of order: the older "issued" arrives after "revoked" and must not undo it
      expect(replica.applyEvent(issued)).to.equal("stale");
      expect(replica.applyEvent(revoked)).to.equal("duplicate");
      expect(replica.appliedEventCount()).to.equal(3);
      const stored = replica.getLicense(a.id)!;
      expect(stored).to.include({
        id: a.id,
        status: "confirmed",
        revoked: true,
        tokenId: "3",
        chainId: 31337,
      });
      expect(replica.listLicenses({ limit: 10, licensee: a.licensee }).items.map((l) => l.id)).to.deep.equal([
        a.id,
      ]);
      // a replica records no events of its own
      expect(replica.eventBacklog()).to.equal(0);
    } finally {
      replica.close();
    }
  });

  it("rejects malformed event values", function () {
    expect(() => parseEvent(null)).to.throw(/empty/);
    expect(() => parseEvent("{")).to.throw(/not JSON/);
    expect(() => parseEvent(JSON.stringify({ schemaVersion: 2 }))).to.throw(/invalid event: schemaVersion/);
  });
});

describe("server: lifecycle events published to Kafka (dc1)", function () {
  this.timeout(180_000);
  let chains: TestChain[];
  let brokers: string[];
  let tmp: ReturnType<typeof tempDir>;
  const runtimes: Runtime[] = [];

  before(async function () {
    const [set, kafka] = await Promise.all([getChains(), getKafka()]);
    brokers = kafka.clusters.find((c) => c.name === "dc1")!.brokers;
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
  });

  after(async function () {
    for (const runtime of runtimes) await runtime.stop();
    tmp?.cleanup();
  });

  function config(dbFile: string, topic: string, eventBrokers: string[], pollMs = 50): Config {
    const base = testConfig(chains, { dbPath: path.join(tmp.dir, dbFile) });
    return parseConfig({
      ...base,
      events: {
        brokers: eventBrokers,
        topic,
        datacenter: "dc1",
        pollMs,
        retry: { initialMs: 50, maxMs: 500 },
      },
    });
  }

  async function start(cfg: Config): Promise<Runtime> {
    const runtime = await startRuntime(cfg, SIGNER);
    runtimes.push(runtime);
    return runtime;
  }

  async function issue(runtime: Runtime, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const res = await request(runtime.app)
      .post("/v1/licenses?wait=20000")
      .set(...auth(KEYS.client))
      .send(body);
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body as Record<string, unknown>;
  }

  async function drained(runtime: Runtime, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (runtime.publisher!.backlog() > 0) {
      if (Date.now() > deadline) throw new Error(`outbox not drained: ${runtime.publisher!.backlog()} left`);
      await sleep(50);
    }
  }

  /** Distinct events by id; asserts every (license, type) appears once among them. */
  function dedupe(records: ReadRecord[]): Map<string, LicenseEvent> {
    const byId = new Map(records.map((r) => [r.event.eventId, r.event]));
    const changes = [...byId.values()].map((e) => `${e.licenseId}:${e.type}`);
    expect(new Set(changes).size, "each state change once").to.equal(changes.length);
    return byId;
  }

  function metric(text: string, name: string): number {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ")[1]) : NaN;
  }

  it("publishes requested, issued and revoked events with the license fields, keyed by license id", async function () {
    const topic = randomTopic("licensing.events");
    const runtime = await start(config("a.sqlite", topic, brokers));
    const licensee = randomAddress();
    const issued = [
      await issue(runtime, { productId: 1, licensee, durationSeconds: 3600 }),
      await issue(runtime, { productId: 1, licensee: randomAddress() }),
      await issue(runtime, { productId: 2, licensee: randomAddress(), seats: 3 }),
    ];
    const revoked = await request(runtime.app)
      .post(`/v1/licenses/${String(issued[0]!.id)}/revoke`)
      .set(...auth(KEYS.admin))
      .send({ reason: "chargeback" });
    expect(revoked.status).to.equal(200);
    await drained(runtime);

    const records = await readTopic(brokers, topic, (r) => new Set(r.map((x) => x.event.eventId)).size >= 7);
    const events = dedupe(records);
    expect(events.size).to.equal(7);
    expect(await partitionCount(brokers, topic)).to.equal(3);
    for (const record of records) {
      expect(record.key).to.equal(record.event.licenseId);
      expect(record.event.schemaVersion).to.equal(1);
      expect(record.event.origin).to.equal("dc1");
      expect(new Date(record.event.occurredAt).toISOString()).to.equal(record.event.occurredAt);
    }
    for (const license of issued) {
      const own = records.filter((r) => r.event.licenseId === license.id);
      // one partition per license, in the order of the changes
      expect(new Set(own.map((r) => r.partition)).size).to.equal(1);
      const types = own.map((r) => r.event.type);
      expect(types).to.deep.equal(
        license === issued[0] ? ["requested", "issued", "revoked"] : ["requested", "issued"],
      );
      const sequences = own.map((r) => r.event.sequence);
      expect(sequences).to.deep.equal([...sequences].sort((x, y) => x - y));
      const requested = own[0]!.event.license;
      expect(requested).to.include({ status: "accepted", tokenId: null, licensee: license.licensee });
      const confirmed = own[1]!.event.license;
      expect(confirmed).to.include({
        id: license.id,
        status: "confirmed",
        chainId: license.chainId,
        contract: license.contract,
        tokenId: license.tokenId,
        txHash: license.txHash,
        licensee: license.licensee,
        productId: license.productId,
        policy: "round-robin",
        seats: license.seats,
        clientId: "client",
      });
      expect(confirmed.expiresAt).to.equal(license.expiresAt ?? 0);
    }
    const revokedEvent = records.find((r) => r.event.type === "revoked")!.event;
    expect(revokedEvent.license).to.include({ id: issued[0]!.id, revoked: true, status: "confirmed" });

    const metrics = await request(runtime.app).get("/metrics");
    expect(metric(metrics.text, "license_events_outbox_backlog")).to.equal(0);
    expect(metric(metrics.text, "license_events_published_total")).to.equal(7);
  });

  it("wakes the publisher on each committed change: an accepted license's event reaches Kafka long before pollMs", async function () {
    const topic = randomTopic("licensing.events");
    const runtime = await start(config("wake.sqlite", topic, brokers, 30_000));
    await sleep(300); // the publisher's first (empty) poll is done: it now sleeps for 30 s
    const res = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .send({ productId: 1, licensee: randomAddress() });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const id = String((res.body as { id: string }).id);
    const deadline = Date.now() + 5000;
    while (runtime.publisher!.backlog() > 0 && Date.now() < deadline) await sleep(25);
    expect(runtime.publisher!.backlog(), "acknowledged by Kafka well before the 30 s poll").to.equal(0);
    const records = await readTopic(
      brokers,
      topic,
      (r) => r.some((x) => x.event.licenseId === id && x.event.type === "requested"),
      10_000,
    );
    expect(
      records.some((x) => x.event.licenseId === id && x.event.type === "requested"),
      "the requested event reached Kafka",
    ).to.equal(true);
  });

  it("keeps events written while Kafka is unreachable and publishes them, none lost, once it is back", async function () {
    const topic = randomTopic("licensing.events");
    const dbFile = "down.sqlite";
    const down = await start(config(dbFile, topic, [`127.0.0.1:${await closedPort()}`]));
    const issued = [
      await issue(down, { productId: 1, licensee: randomAddress() }),
      await issue(down, { productId: 1, licensee: randomAddress() }),
      await issue(down, { productId: 1, licensee: randomAddress(), durationSeconds: 3600 }),
    ];
    const renewed = await request(down.app)
      .post(`/v1/licenses/${String(issued[2]!.id)}/renew`)
      .set(...auth(KEYS.client))
      .send({ durationSeconds: 600 });
    expect(renewed.status).to.equal(200);
    // the service works on; the events wait in the outbox while the publisher retries
    await sleep(500);
    expect(down.publisher!.backlog()).to.equal(7);
    const metrics = await request(down.app).get("/metrics");
    expect(metric(metrics.text, "license_events_outbox_backlog")).to.equal(7);
    expect(metric(metrics.text, "license_events_publish_errors_total")).to.be.greaterThan(0);
    expect(metric(metrics.text, "license_events_published_total")).to.equal(0);
    await down.stop();
    runtimes.splice(runtimes.indexOf(down), 1);

    // the same database, now with a reachable Kafka: the backlog is published
    const up = await start(config(dbFile, topic, brokers));
    await drained(up);
    const records = await readTopic(brokers, topic, (r) => new Set(r.map((x) => x.event.eventId)).size >= 7);
    const events = dedupe(records);
    expect(events.size).to.equal(7);
    const types = [...events.values()].map(
      (e) => `${issued.findIndex((l) => l.id === e.licenseId)}:${e.type}`,
    );
    expect(types.sort()).to.deep.equal(
      ["0:requested", "0:issued", "1:requested", "1:issued", "2:requested", "2:issued", "2:renewed"].sort(),
    );
    const renewal = [...events.values()].find((e) => e.type === "renewed")!;
    expect(renewal.license.expiresAt).to.equal(renewed.body.expiresAt);
    expect(renewal.license.expiresAt).to.be.greaterThan(Number(issued[2]!.expiresAt));
  });
});
