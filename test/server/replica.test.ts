/**
 * Read-only replica: a primary in dc1 publishes its lifecycle events to a topic in dc1; the test copies
 * that topic to dc2 as `dc1.<topic>` (the replicator's prefixed naming); a replica in dc2 consumes it.
 * After the primary is stopped the replica still answers lookups, listing and verify (read from the
 * chain), and refuses writes. Signer: dev account 9, fresh contracts on the three shared chains.
 */
import path from "node:path";
import { expect } from "chai";
import pino from "pino";
import request from "supertest";
import { getChains, getKafka, randomTopic } from "../fixtures/infra.js";
import { parseConfig, type Config, type ResolvedChain } from "../../server/config.js";
import { AppError } from "../../server/errors.js";
import { buildRuntime, type Runtime } from "../../server/index.js";
import { copyTopic } from "./kafka-helpers.js";
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

/** The replica's config from the primary's: same chains (no signers), API keys and products. */
function replicaConfig(primary: Config, dbPath: string, replica: Record<string, unknown>): Config {
  const { events: _events, ...rest } = primary;
  return parseConfig({
    ...rest,
    mode: "replica",
    database: { path: dbPath },
    chains: primary.chains.map(({ signer: _signer, ...chain }) => chain),
    replica,
  });
}

describe("server: replica config", function () {
  const base = {
    database: { path: ":memory:" },
    chains: [{ name: "a", chainId: 1, rpcUrl: "http://127.0.0.1:1", contract: "0x" + "11".repeat(20) }],
    apiKeys: [{ id: "r", sha256: "0".repeat(64), scopes: ["licenses:read"] }],
  };
  const fieldOf = (raw: unknown): string | undefined => {
    try {
      parseConfig(raw);
      return undefined;
    } catch (error) {
      return (error as AppError).field;
    }
  };

  it("needs `replica` in replica mode, signers in primary mode, and no events on a replica", function () {
    expect(fieldOf({ ...base, mode: "replica" })).to.equal("replica");
    expect(fieldOf(base)).to.equal("chains[0].signer");
    const replica = { brokers: ["127.0.0.1:9092"], topics: ["dc1.licensing.events"], groupId: "r" };
    const parsed = parseConfig({ ...base, mode: "replica", replica });
    expect(parsed.replica).to.deep.equal({ ...replica, topicCheckMs: 5000 });
    expect(
      fieldOf({
        ...base,
        mode: "replica",
        replica,
        events: { brokers: ["127.0.0.1:9092"], datacenter: "dc2" },
      }),
    ).to.equal("events");
    expect(fieldOf({ ...base, mode: "replica", replica: { ...replica, topics: ["bad topic"] } })).to.equal(
      "replica.topics[0]",
    );
  });

  it("defaults the events topic to licensing.events with 3 partitions", function () {
    const parsed = parseConfig({
      ...base,
      chains: [{ ...base.chains[0], signer: { env: "KEY" } }],
      events: { brokers: ["127.0.0.1:9092"], datacenter: "dc1" },
    });
    expect(parsed.events).to.include({ topic: "licensing.events", partitions: 3, datacenter: "dc1" });
    expect(fieldOf({ ...base, events: { brokers: ["nohost"], datacenter: "dc1" } })).to.equal(
      "events.brokers[0]",
    );
  });
});

describe("server: read-only replica in dc2 fed by the events of the primary in dc1", function () {
  this.timeout(240_000);
  let chains: TestChain[];
  let dc1: string[];
  let dc2: string[];
  let tmp: ReturnType<typeof tempDir>;
  let primary: Runtime | undefined;
  let replica: Runtime | undefined;
  let copier: Awaited<ReturnType<typeof copyTopic>> | undefined;
  const topic = randomTopic("licensing.events");
  const issued: Record<string, unknown>[] = [];
  let revokedId = "";
  let renewed: Record<string, unknown> = {};

  before(async function () {
    const [set, kafka] = await Promise.all([getChains(), getKafka()]);
    dc1 = kafka.clusters.find((c) => c.name === "dc1")!.brokers;
    dc2 = kafka.clusters.find((c) => c.name === "dc2")!.brokers;
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
    const base = testConfig(chains, { dbPath: path.join(tmp.dir, "primary.sqlite") });
    const primaryConfig = parseConfig({
      ...base,
      events: { brokers: dc1, topic, datacenter: "dc1", pollMs: 50 },
    });
    primary = await startRuntime(primaryConfig, SIGNER);
    const replicaCfg = replicaConfig(primaryConfig, path.join(tmp.dir, "replica.sqlite"), {
      brokers: dc2,
      // the local topic does not exist in dc2 (no primary there): only the replicated one is consumed
      topics: [topic, `dc1.${topic}`],
      groupId: `licensing-replica-${topic}`,
      topicCheckMs: 300,
    });
    replica = await buildRuntime(replicaCfg, replicaCfg.chains as ResolvedChain[], {
      env: {},
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    });
  });

  after(async function () {
    await copier?.stop();
    await primary?.stop();
    await replica?.stop();
    tmp?.cleanup();
  });

  async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  it("replicates licenses issued, revoked and renewed on the primary, with the same ids", async function () {
    const licensee = randomAddress();
    for (const body of [
      { productId: 1, licensee, durationSeconds: 3600 },
      { productId: 1, licensee },
      { productId: 2, licensee: randomAddress(), seats: 4 },
      { productId: 1, licensee, durationSeconds: 3600 },
    ]) {
      const res = await request(primary!.app)
        .post("/v1/licenses?wait=20000")
        .set(...auth(KEYS.client))
        .send(body);
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      issued.push(res.body as Record<string, unknown>);
    }
    revokedId = String(issued[1]!.id);
    const revoke = await request(primary!.app)
      .post(`/v1/licenses/${revokedId}/revoke`)
      .set(...auth(KEYS.admin))
      .send({});
    expect(revoke.status).to.equal(200);
    const renew = await request(primary!.app)
      .post(`/v1/licenses/${String(issued[3]!.id)}/renew`)
      .set(...auth(KEYS.client))
      .send({ durationSeconds: 600 });
    expect(renew.status).to.equal(200);
    renewed = renew.body as Record<string, unknown>;

    // the primary's topic exists once its first events are published; then "replicate" it to dc2
    await waitUntil("the primary's outbox to drain", () => primary!.publisher!.backlog() === 0);
    copier = await copyTopic(dc1, topic, dc2, `dc1.${topic}`);
    // 4 requested + 4 issued + 1 revoked + 1 renewed
    await waitUntil("the replica to apply 10 events", () => replica!.store.appliedEventCount() >= 10);
    expect(replica!.replica!.topics()).to.deep.equal([`dc1.${topic}`]);
    for (const license of issued) {
      const [fromPrimary, fromReplica] = await Promise.all(
        [primary!, replica!].map((r) =>
          request(r.app)
            .get(`/v1/licenses/${String(license.id)}`)
            .set(...auth(KEYS.client)),
        ),
      );
      expect(fromReplica!.status).to.equal(200);
      expect(fromReplica!.body).to.deep.equal(fromPrimary!.body);
    }
  });

  it("keeps answering lookups, listing and verify (from the chain) after the primary stopped", async function () {
    expect(issued).to.have.length(4);
    await copier!.stop();
    copier = undefined;
    await primary!.stop();
    primary = undefined;

    const one = await request(replica!.app)
      .get(`/v1/licenses/${String(issued[0]!.id)}`)
      .set(...auth(KEYS.client));
    expect(one.status).to.equal(200);
    expect(one.body).to.include({
      id: issued[0]!.id,
      status: "confirmed",
      chainId: issued[0]!.chainId,
      contract: issued[0]!.contract,
      tokenId: issued[0]!.tokenId,
      txHash: issued[0]!.txHash,
      licensee: issued[0]!.licensee,
      revoked: false,
    });
    const renewedView = await request(replica!.app)
      .get(`/v1/licenses/${String(issued[3]!.id)}`)
      .set(...auth(KEYS.client));
    expect(renewedView.body.expiresAt).to.equal(renewed.expiresAt);
    expect(renewedView.body.expiresAt).to.be.greaterThan(Number(issued[3]!.expiresAt));

    // listing with the same filters and pagination
    const byLicensee = await request(replica!.app)
      .get(`/v1/licenses?licensee=${String(issued[0]!.licensee)}&status=confirmed`)
      .set(...auth(KEYS.client));
    expect(byLicensee.status).to.equal(200);
    expect((byLicensee.body.items as { id: string }[]).map((l) => l.id).sort()).to.deep.equal(
      [issued[0]!.id, issued[1]!.id, issued[3]!.id].map(String).sort(),
    );
    const pinned = await request(replica!.app)
      .get(`/v1/licenses?productId=2&chainId=${String(issued[2]!.chainId)}`)
      .set(...auth(KEYS.client));
    expect((pinned.body.items as { id: string }[]).map((l) => l.id)).to.deep.equal([issued[2]!.id]);
    const page = await request(replica!.app)
      .get("/v1/licenses?limit=3")
      .set(...auth(KEYS.client));
    expect(page.body.items).to.have.length(3);
    const rest = await request(replica!.app)
      .get(`/v1/licenses?limit=3&cursor=${String(page.body.nextCursor)}`)
      .set(...auth(KEYS.client));
    expect(rest.body.items).to.have.length(1);
    expect(rest.body.nextCursor).to.equal(null);

    // verify reads the chain itself
    const valid = await request(replica!.app)
      .get(`/v1/licenses/${String(issued[0]!.id)}/verify`)
      .set(...auth(KEYS.client));
    expect(valid.status).to.equal(200);
    expect(valid.body).to.include({
      code: "VALID",
      valid: true,
      owner: issued[0]!.licensee,
      tokenId: issued[0]!.tokenId,
    });
    const revoked = await request(replica!.app)
      .get(`/v1/licenses/${revokedId}/verify`)
      .set(...auth(KEYS.client));
    expect(revoked.body).to.include({ code: "REVOKED", valid: false, revoked: true });

    // auth is the same: another client does not see the license, no key is a 401
    const other = await request(replica!.app)
      .get(`/v1/licenses/${String(issued[0]!.id)}`)
      .set(...auth(KEYS.other));
    expect(other.status).to.equal(404);
    const anonymous = await request(replica!.app).get(`/v1/licenses/${String(issued[0]!.id)}`);
    expect(anonymous.status).to.equal(401);
    const ready = await request(replica!.app).get("/readyz");
    expect(ready.status).to.equal(200);
  });

  it("answers every write with 405 READ_ONLY_REPLICA", async function () {
    const id = String(issued[0]!.id);
    const writes = [
      request(replica!.app)
        .post("/v1/licenses")
        .set(...auth(KEYS.client))
        .send({ productId: 1, licensee: randomAddress() }),
      request(replica!.app)
        .post(`/v1/licenses/${id}/renew`)
        .set(...auth(KEYS.client))
        .send({ durationSeconds: 60 }),
      request(replica!.app)
        .post(`/v1/licenses/${id}/revoke`)
        .set(...auth(KEYS.admin))
        .send({}),
      request(replica!.app)
        .post("/v1/products")
        .set(...auth(KEYS.admin))
        .send({ id: 9, name: "X" }),
    ];
    // Allow: the path's read methods only (renew and revoke have none)
    const allows = ["GET, HEAD, OPTIONS", "OPTIONS", "OPTIONS", "GET, HEAD, OPTIONS"];
    for (const [i, res] of (await Promise.all(writes)).entries()) {
      expect(res.status).to.equal(405);
      expect(res.headers.allow).to.equal(allows[i]);
      expect(res.body.code).to.equal("READ_ONLY_REPLICA");
    }
    const options = await request(replica!.app).options("/v1/licenses");
    expect(options.status).to.equal(204);
    expect(options.headers.allow).to.equal("GET, HEAD, OPTIONS");
    const trace = await request(replica!.app).trace("/v1/licenses");
    expect(trace.status).to.equal(405);
    expect(trace.body.code).to.equal("METHOD_NOT_ALLOWED");
    // nothing changed
    const after = await request(replica!.app)
      .get(`/v1/licenses/${id}`)
      .set(...auth(KEYS.client));
    expect(after.body.revoked).to.equal(false);
    // the service layer refuses as well
    expect(() =>
      replica!.service.accept(
        { id: "client", scopes: ["licenses:write"] },
        { productId: 1, licensee: randomAddress() },
      ),
    ).to.throw(AppError, /read-only/);
  });
});
