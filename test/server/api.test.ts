/**
 * Licensing service against the three shared local chains (signer: dev account 10, fresh contracts).
 */
import { expect } from "chai";
import path from "node:path";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import type { Runtime } from "../../server/index.js";
import { rpc } from "../../launchers/chains.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(10);

describe("server: licensing API on three chains", function () {
  this.timeout(120_000);
  let runtime: Runtime;
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;

  before(async function () {
    const set = await getChains();
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
    runtime = await startRuntime(testConfig(chains, { dbPath: path.join(tmp.dir, "db.sqlite") }), SIGNER);
  });

  after(async function () {
    await runtime?.stop();
    tmp?.cleanup();
  });

  it("issues one license end to end: 202, then confirmed with a token id, verify VALID", async function () {
    const licensee = randomAddress();
    const accepted = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .set("Idempotency-Key", "e2e-1")
      .send({ productId: 1, licensee, durationSeconds: 3600, seats: 5 });
    expect(accepted.status).to.equal(202);
    expect(accepted.body.status).to.equal("accepted");
    expect(accepted.body.policy).to.equal("round-robin");
    expect(chains.map((c) => c.chainId)).to.include(accepted.body.chainId);
    const id = accepted.body.id as string;

    let license: Record<string, unknown> = {};
    for (let i = 0; i < 100 && license.status !== "confirmed"; i++) {
      license = (
        await request(runtime.app)
          .get(`/v1/licenses/${id}`)
          .set(...auth(KEYS.client))
      ).body;
      if (license.status !== "confirmed") await new Promise((r) => setTimeout(r, 100));
    }
    expect(license.status).to.equal("confirmed");
    expect(license.tokenId).to.equal("1");
    expect(license.txHash).to.match(/^0x[0-9a-f]{64}$/);

    const verify = await request(runtime.app)
      .get(`/v1/licenses/${id}/verify`)
      .set(...auth(KEYS.client));
    expect(verify.status).to.equal(200);
    expect(verify.body.code).to.equal("VALID");
    expect(verify.body.valid).to.equal(true);
    expect(verify.body.owner).to.equal(licensee);
    expect(verify.body.chainId).to.equal(accepted.body.chainId);
    const chain = chains.find((c) => c.chainId === accepted.body.chainId)!;
    expect(await mintedCount(chain.rpcUrl, chain.contract)).to.equal(1);
  });

  async function issue(key: string, body: Record<string, unknown>, idem?: string): Promise<request.Response> {
    const req = request(runtime.app)
      .post("/v1/licenses?wait=20000")
      .set(...auth(key));
    if (idem) req.set("Idempotency-Key", idem);
    return req.send(body);
  }

  it("waits with ?wait and Prefer: wait=N, answering 201 with chain, contract, token id and tx hash", async function () {
    const res = await issue(KEYS.client, { productId: 1, licensee: randomAddress() });
    expect(res.status).to.equal(201);
    expect(res.body).to.include.keys("chainId", "contract", "tokenId", "txHash", "blockNumber");
    expect(res.body.expiresAt).to.equal(null);
    const prefer = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .set("Prefer", "wait=20")
      .send({ productId: 1, licensee: randomAddress() });
    expect(prefer.status).to.equal(201);
    expect(prefer.body.status).to.equal("confirmed");
  });

  it("idempotent retries return the same license; another body with the key is a 409", async function () {
    const body = { productId: 1, licensee: randomAddress(), seats: 2 };
    const first = await issue(KEYS.client, body, "idem-A");
    const again = await issue(KEYS.client, body, "idem-A");
    const concurrent = await Promise.all([1, 2, 3].map(() => issue(KEYS.client, body, "idem-A")));
    expect(first.status).to.equal(201);
    expect(again.status).to.equal(201);
    expect(again.headers["idempotent-replayed"]).to.equal("true");
    for (const res of [again, ...concurrent]) {
      expect(res.body.id).to.equal(first.body.id);
      expect(res.body.tokenId).to.equal(first.body.tokenId);
    }
    const conflict = await issue(KEYS.client, { ...body, seats: 3 }, "idem-A");
    expect(conflict.status).to.equal(409);
    expect(conflict.body).to.deep.equal({
      code: "IDEMPOTENCY_CONFLICT",
      message: "Idempotency-Key reused with another body",
      field: "Idempotency-Key",
    });
    // keys are per client: another client's same key is a new license
    const other = await issue(KEYS.other, body, "idem-A");
    expect(other.status).to.equal(201);
    expect(other.body.id).to.not.equal(first.body.id);
    // exactly two licenses for this licensee exist on-chain across the chains
    const admin = await request(runtime.app)
      .get(`/v1/licenses?licensee=${body.licensee}`)
      .set(...auth(KEYS.admin));
    expect(admin.body.items).to.have.length(2);
  });

  it("revoke (admin) is reflected by verify: REVOKED, not valid", async function () {
    const res = await issue(KEYS.client, {
      productId: 1,
      licensee: randomAddress(),
      durationSeconds: 86_400,
    });
    expect(res.status).to.equal(201);
    const forbidden = await request(runtime.app)
      .post(`/v1/licenses/${res.body.id}/revoke`)
      .set(...auth(KEYS.client))
      .send({});
    expect(forbidden.status).to.equal(403);
    expect(forbidden.body.code).to.equal("FORBIDDEN");
    const revoked = await request(runtime.app)
      .post(`/v1/licenses/${res.body.id}/revoke`)
      .set(...auth(KEYS.admin))
      .send({ reason: "chargeback" });
    expect(revoked.status).to.equal(200);
    expect(revoked.body.revoked).to.equal(true);
    const verify = await request(runtime.app)
      .get(`/v1/licenses/${res.body.id}/verify`)
      .set(...auth(KEYS.client));
    expect(verify.body).to.include({ code: "REVOKED", valid: false, revoked: true });
    const renew = await request(runtime.app)
      .post(`/v1/licenses/${res.body.id}/renew`)
      .set(...auth(KEYS.client))
      .send({ durationSeconds: 60 });
    expect(renew.status).to.equal(409);
    expect(renew.body.code).to.equal("INVALID_STATE");
  });

  it("verify reflects expiry after time travel, and renew makes the license valid again", async function () {
    const res = await issue(KEYS.client, {
      productId: 1,
      licensee: randomAddress(),
      durationSeconds: 30,
      chain: chains[2]!.chainId,
    });
    expect(res.status).to.equal(201);
    expect(res.body.chainId).to.equal(chains[2]!.chainId);
    const before = await request(runtime.app)
      .get(`/v1/licenses/${res.body.id}/verify`)
      .set(...auth(KEYS.client));
    expect(before.body.code).to.equal("VALID");
    await rpc(chains[2]!.rpcUrl, "evm_increaseTime", [60]);
    await rpc(chains[2]!.rpcUrl, "evm_mine", []);
    const after = await request(runtime.app)
      .get(`/v1/licenses/${res.body.id}/verify`)
      .set(...auth(KEYS.client));
    expect(after.body).to.include({ code: "EXPIRED", valid: false });
    const renewed = await request(runtime.app)
      .post(`/v1/licenses/${res.body.id}/renew`)
      .set(...auth(KEYS.client))
      .send({ durationSeconds: 3600 });
    expect(renewed.status).to.equal(200);
    expect(renewed.body.expiresAt).to.be.greaterThan(res.body.expiresAt as number);
    const again = await request(runtime.app)
      .get(`/v1/licenses/${res.body.id}/verify`)
      .set(...auth(KEYS.client));
    expect(again.body).to.include({ code: "VALID", valid: true });
  });

  it("lists with filters and cursor pagination; clients see only their own licenses", async function () {
    const licensee = randomAddress();
    for (let i = 0; i < 5; i++)
      expect((await issue(KEYS.other, { productId: 1, licensee })).status).to.equal(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(runtime.app)
        .get(`/v1/licenses?licensee=${licensee}&limit=2${cursor ? `&cursor=${cursor}` : ""}`)
        .set(...auth(KEYS.other));
      expect(res.status).to.equal(200);
      expect(res.body.items.length).to.be.at.most(2);
      seen.push(...res.body.items.map((l: { id: string }) => l.id));
      cursor = res.body.nextCursor as string | null;
    } while (cursor);
    expect(new Set(seen).size).to.equal(5);
    const confirmed = await request(runtime.app)
      .get(`/v1/licenses?licensee=${licensee}&status=confirmed&chainId=${chains[0]!.chainId}`)
      .set(...auth(KEYS.other));
    expect(confirmed.body.items.every((l: { chainId: number }) => l.chainId === chains[0]!.chainId)).to.equal(
      true,
    );
    const mine = await request(runtime.app)
      .get(`/v1/licenses?licensee=${licensee}`)
      .set(...auth(KEYS.client));
    expect(mine.body.items).to.deep.equal([]);
    const theirs = await request(runtime.app)
      .get(`/v1/licenses/${seen[0]}`)
      .set(...auth(KEYS.client));
    expect(theirs.status).to.equal(404);
  });

  it("product-pinned products go to their chain; products and chains endpoints", async function () {
    const res = await issue(KEYS.client, { productId: 2, licensee: randomAddress() });
    expect(res.status).to.equal(201);
    expect(res.body.chainId).to.equal(chains[2]!.chainId);
    const created = await request(runtime.app)
      .post("/v1/products")
      .set(...auth(KEYS.admin))
      .send({ id: 77, name: "Enterprise", defaultDurationSeconds: 3600 });
    expect(created.status).to.equal(201);
    expect(
      (
        await request(runtime.app)
          .post("/v1/products")
          .set(...auth(KEYS.admin))
          .send({ id: 77, name: "x" })
      ).status,
    ).to.equal(409);
    const products = await request(runtime.app)
      .get("/v1/products")
      .set(...auth(KEYS.reader));
    expect(products.body.items.map((p: { id: number }) => p.id)).to.deep.equal([1, 2, 77]);
    const chainsRes = await request(runtime.app)
      .get("/v1/chains")
      .set(...auth(KEYS.reader));
    expect(chainsRes.status).to.equal(200);
    expect(chainsRes.body.items).to.have.length(3);
    for (const item of chainsRes.body.items) {
      expect(item).to.include({ healthy: true, weight: 1 });
      expect(item.headBlock).to.be.a("number");
      expect(item.issued).to.be.a("number");
      expect(item).to.not.have.any.keys("privateKey", "signerKey");
    }
    const total = chainsRes.body.items.reduce((sum: number, c: { issued: number }) => sum + c.issued, 0);
    let onChain = 0;
    for (const c of chains) onChain += await mintedCount(c.rpcUrl, c.contract);
    expect(total).to.equal(onChain);
  });

  it("auth matrix: 401 without or with an unknown key, 403 without the scope", async function () {
    const body = { productId: 1, licensee: randomAddress() };
    const cases: [string, () => request.Test, number, string?][] = [
      ["no key", () => request(runtime.app).get("/v1/licenses"), 401, "UNAUTHENTICATED"],
      [
        "unknown key",
        () =>
          request(runtime.app)
            .get("/v1/licenses")
            .set(...auth("nope")),
        401,
        "UNAUTHENTICATED",
      ],
      ["X-API-Key header", () => request(runtime.app).get("/v1/licenses").set("X-API-Key", KEYS.reader), 200],
      [
        "reader cannot issue",
        () =>
          request(runtime.app)
            .post("/v1/licenses")
            .set(...auth(KEYS.reader))
            .send(body),
        403,
        "FORBIDDEN",
      ],
      [
        "client cannot add products",
        () =>
          request(runtime.app)
            .post("/v1/products")
            .set(...auth(KEYS.client))
            .send({ id: 5, name: "x" }),
        403,
        "FORBIDDEN",
      ],
      [
        "reader reads chains",
        () =>
          request(runtime.app)
            .get("/v1/chains")
            .set(...auth(KEYS.reader)),
        200,
      ],
      [
        "admin reads all",
        () =>
          request(runtime.app)
            .get("/v1/licenses")
            .set(...auth(KEYS.admin)),
        200,
      ],
      ["health needs no key", () => request(runtime.app).get("/healthz"), 200],
    ];
    for (const [name, call, status, code] of cases) {
      const res = await call();
      expect(res.status, name).to.equal(status);
      if (code) expect(res.body.code, name).to.equal(code);
    }
  });

  it("bad-input matrix: 400 with code and field, 404, 413, 415, never a 500", async function () {
    const good = { productId: 1, licensee: randomAddress() };
    const post = (body: unknown): request.Test =>
      request(runtime.app)
        .post("/v1/licenses")
        .set(...auth(KEYS.client))
        .send(body as object);
    const cases: [string, () => request.Test, number, string, string?][] = [
      [
        "licensee not an address",
        () => post({ ...good, licensee: "0x1234" }),
        400,
        "VALIDATION_FAILED",
        "licensee",
      ],
      [
        "licensee bad checksum",
        // hardhat account #1 with the case of one letter flipped
        () => post({ ...good, licensee: "0x70997970c51812dc3A010C7d01b50e0d17dc79C8" }),
        400,
        "VALIDATION_FAILED",
        "licensee",
      ],
      [
        "zero address",
        () => post({ ...good, licensee: "0x0000000000000000000000000000000000000000" }),
        400,
        "VALIDATION_FAILED",
        "licensee",
      ],
      ["missing productId", () => post({ licensee: good.licensee }), 400, "VALIDATION_FAILED", "productId"],
      ["productId a string", () => post({ ...good, productId: "1" }), 400, "VALIDATION_FAILED", "productId"],
      ["unknown product", () => post({ ...good, productId: 999 }), 400, "VALIDATION_FAILED", "productId"],
      [
        "negative duration",
        () => post({ ...good, durationSeconds: -5 }),
        400,
        "VALIDATION_FAILED",
        "durationSeconds",
      ],
      ["seats zero", () => post({ ...good, seats: 0 }), 400, "VALIDATION_FAILED", "seats"],
      ["unknown field", () => post({ ...good, color: "red" }), 400, "VALIDATION_FAILED", "color"],
      ["unknown chain", () => post({ ...good, chain: 5 }), 400, "VALIDATION_FAILED", "chain"],
      [
        "unknown chain name in list",
        () => post({ ...good, chain: [chains[0]!.chainId, "mars"] }),
        400,
        "VALIDATION_FAILED",
        "chain.1",
      ],
      ["body an array", () => post([good]), 400, "VALIDATION_FAILED"],
      [
        "invalid JSON",
        () =>
          request(runtime.app)
            .post("/v1/licenses")
            .set(...auth(KEYS.client))
            .set("Content-Type", "application/json")
            .send('{"productId":'),
        400,
        "INVALID_JSON",
      ],
      [
        "bad Idempotency-Key",
        () => post(good).set("Idempotency-Key", "x".repeat(201)),
        400,
        "VALIDATION_FAILED",
        "Idempotency-Key",
      ],
      [
        "bad wait",
        () =>
          request(runtime.app)
            .post("/v1/licenses?wait=soon")
            .set(...auth(KEYS.client))
            .send(good),
        400,
        "VALIDATION_FAILED",
        "wait",
      ],
      ["oversize body", () => post({ ...good, pad: "x".repeat(10_000) }), 413, "PAYLOAD_TOO_LARGE"],
      [
        "text/plain body",
        () =>
          request(runtime.app)
            .post("/v1/licenses")
            .set(...auth(KEYS.client))
            .set("Content-Type", "text/plain")
            .send("hello"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Content-Type",
      ],
      [
        "form body",
        () =>
          request(runtime.app)
            .post("/v1/licenses")
            .set(...auth(KEYS.client))
            .type("form")
            .send({ productId: 1 }),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
      [
        "id not a uuid",
        () =>
          request(runtime.app)
            .get("/v1/licenses/42")
            .set(...auth(KEYS.client)),
        400,
        "VALIDATION_FAILED",
        "id",
      ],
      [
        "unknown id",
        () =>
          request(runtime.app)
            .get("/v1/licenses/00000000-0000-4000-8000-000000000000")
            .set(...auth(KEYS.client)),
        404,
        "NOT_FOUND",
      ],
      [
        "unknown id verify",
        () =>
          request(runtime.app)
            .get("/v1/licenses/00000000-0000-4000-8000-000000000000/verify")
            .set(...auth(KEYS.client)),
        404,
        "NOT_FOUND",
      ],
      [
        "unknown route",
        () =>
          request(runtime.app)
            .get("/v1/nothing")
            .set(...auth(KEYS.client)),
        404,
        "NOT_FOUND",
      ],
      [
        "bad list status",
        () =>
          request(runtime.app)
            .get("/v1/licenses?status=done")
            .set(...auth(KEYS.client)),
        400,
        "VALIDATION_FAILED",
        "status",
      ],
      [
        "bad list limit",
        () =>
          request(runtime.app)
            .get("/v1/licenses?limit=100000")
            .set(...auth(KEYS.client)),
        400,
        "VALIDATION_FAILED",
        "limit",
      ],
      [
        "unknown list param",
        () =>
          request(runtime.app)
            .get("/v1/licenses?sort=x")
            .set(...auth(KEYS.client)),
        400,
        "VALIDATION_FAILED",
        "sort",
      ],
      [
        "renew bad duration",
        () =>
          request(runtime.app)
            .post("/v1/licenses/00000000-0000-4000-8000-000000000000/renew")
            .set(...auth(KEYS.client))
            .send({ durationSeconds: "x" }),
        400,
        "VALIDATION_FAILED",
        "durationSeconds",
      ],
      [
        "product without name",
        () =>
          request(runtime.app)
            .post("/v1/products")
            .set(...auth(KEYS.admin))
            .send({ id: 9 }),
        400,
        "VALIDATION_FAILED",
        "name",
      ],
      [
        "product on unknown chain",
        () =>
          request(runtime.app)
            .post("/v1/products")
            .set(...auth(KEYS.admin))
            .send({ id: 9, name: "n", chains: [1] }),
        400,
        "VALIDATION_FAILED",
        "chains.0",
      ],
    ];
    for (const [name, call, status, code, field] of cases) {
      const res = await call();
      expect(res.status, name).to.equal(status);
      expect(res.body.code, name).to.equal(code);
      if (field) expect(res.body.field, name).to.equal(field);
      expect(JSON.stringify(res.body), name).to.not.match(/at .*\.ts|stack/i);
    }
  });

  it("rate limit per key: 429 with Retry-After", async function () {
    const { createApp } = await import("../../server/app.js");
    const { ApiKeys, RateLimiter } = await import("../../server/auth.js");
    const app = createApp({
      service: runtime.service,
      apiKeys: new ApiKeys(runtime.service.config.apiKeys),
      rateLimiter: new RateLimiter(0.05, 3),
      logger: runtime.service.logger,
      metrics: runtime.service.metrics,
      bodyLimitBytes: 4096,
    });
    const statuses: number[] = [];
    let limited: request.Response | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await request(app)
        .get("/v1/products")
        .set(...auth(KEYS.reader));
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses).to.deep.equal([200, 200, 200, 429, 429]);
    expect(limited!.body.code).to.equal("RATE_LIMITED");
    expect(Number(limited!.headers["retry-after"])).to.be.within(1, 20);
    // another key has its own bucket
    expect(
      (
        await request(app)
          .get("/v1/products")
          .set(...auth(KEYS.client))
      ).status,
    ).to.equal(200);
  });

  it("serves /healthz, /readyz, /metrics and the OpenAPI document", async function () {
    expect((await request(runtime.app).get("/healthz")).body).to.deep.equal({ status: "ok" });
    expect((await request(runtime.app).get("/readyz")).status).to.equal(200);
    const metrics = await request(runtime.app).get("/metrics");
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/license_confirmed_total\{chain="chain-3133\d"\} \d+/);
    expect(metrics.text).to.contain("license_queue_depth");
    expect(metrics.text).to.contain("license_issue_latency_seconds_bucket");
    const doc = await request(runtime.app).get("/openapi.json");
    expect(doc.body.openapi).to.match(/^3\./);
    expect(doc.body.paths).to.include.keys("/v1/licenses", "/v1/licenses/{id}/verify", "/v1/chains");
    expect((await request(runtime.app).get("/docs")).text).to.contain("/openapi.json");
  });

  it("CLI: issue --wait, get, verify, list and chains over HTTP, with readable output", async function () {
    const { listen } = await import("../../server/index.js");
    const { run } = await import("../../server/cli.js");
    const { server, port } = await listen(runtime.app, 0);
    const lines: string[] = [];
    const original = { log: console.log, error: console.error };
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    console.error = console.log;
    try {
      const env = { LICENSE_API_KEY: KEYS.client, LICENSE_API_URL: `http://127.0.0.1:${port}` };
      const licensee = randomAddress();
      expect(
        await run(["issue", "--product", "1", "--licensee", licensee, "--wait", "--key", "cli-1"], env),
      ).to.equal(0);
      const id = lines.find((l) => l.startsWith("id "))!.split(/\s+/)[1]!;
      expect(lines.some((l) => /^status\s+confirmed$/.test(l))).to.equal(true);
      lines.length = 0;
      expect(await run(["verify", id], env)).to.equal(0);
      expect(lines[0]).to.match(/^VALID {2}valid=true/);
      expect(await run(["get", id, "--json"], env)).to.equal(0);
      expect(await run(["list", "--licensee", licensee], env)).to.equal(0);
      expect(lines.some((l) => l.startsWith(id))).to.equal(true);
      lines.length = 0;
      expect(await run(["chains"], env)).to.equal(0);
      expect(lines[0]).to.equal("policy: round-robin");
      expect(lines.length).to.equal(5);
      lines.length = 0;
      expect(await run(["revoke", id], env)).to.equal(1);
      expect(lines[0]).to.match(/^error 403 FORBIDDEN/);
      expect(await run(["--help"], env)).to.equal(0);
      expect(await run(["get", id], {})).to.equal(2);
    } finally {
      console.log = original.log;
      console.error = original.error;
      server.closeAllConnections();
      server.close();
    }
  });
});
