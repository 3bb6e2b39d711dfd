/**
 * The bulk endpoint `POST /v1/licenses/batch` on the three shared chains (signer: dev account 8, fresh
 * contracts): one result per item, idempotent replay per item key (shared with the single endpoint's
 * `Idempotency-Key`), all-or-nothing validation naming `items.<index>.<field>`, and its limits.
 */
import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import type { Runtime } from "../../server/index.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(8);

/** The counts of a bulk reply. */
const tally = (r: BulkReply) => ({ accepted: r.accepted, replayed: r.replayed, failed: r.failed });

interface BulkReply {
  accepted: number;
  replayed: number;
  failed: number;
  items: {
    index: number;
    status: number;
    replayed?: boolean;
    license?: { id: string; status: string; chainId: number; licensee: string };
    error?: { code: string; message: string; field?: string };
  }[];
}

describe("server: bulk issue endpoint on three chains", function () {
  this.timeout(120_000);
  let runtime: Runtime;
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;

  const minted = async (): Promise<number> => {
    let total = 0;
    for (const c of chains) total += await mintedCount(c.rpcUrl, c.contract);
    return total;
  };
  const licenseCount = (): number => runtime.store.listLicenses({ limit: 100_000 }).items.length;
  const post = (items: unknown, key = KEYS.client): request.Test =>
    request(runtime.app)
      .post("/v1/licenses/batch")
      .set(...auth(key))
      .send({ items });

  before(async function () {
    const set = await getChains();
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
    runtime = await startRuntime(
      testConfig(chains, {
        dbPath: path.join(tmp.dir, "db.sqlite"),
        bulk: { maxItems: 150, bodyLimitBytes: 64 * 1024 },
        rateLimit: { perSecond: 1, burst: 1000 },
      }),
      SIGNER,
    );
  });

  after(async function () {
    await runtime?.stop();
    tmp?.cleanup();
  });

  it("accepts a batch with one result per item, in order, and issues every license on-chain once", async function () {
    const items = Array.from({ length: 120 }, (_, i) => ({
      productId: 1,
      licensee: randomAddress(),
      ...(i % 2 === 0 ? { idempotencyKey: `bulk-happy-${i}` } : {}),
      ...(i === 7 ? { chain: chains[2]!.name, seats: 3, durationSeconds: 3600 } : {}),
    }));
    const res = await post(items);
    expect(res.status).to.equal(202);
    const body = res.body as BulkReply;
    expect(tally(body)).to.deep.equal({
      accepted: 120,
      replayed: 0,
      failed: 0,
    });
    expect(body.items.map((r) => r.index)).to.deep.equal(items.map((_, i) => i));
    expect(body.items.every((r) => r.status === 202 && r.license?.status === "accepted")).to.equal(true);
    expect(body.items.map((r) => r.license!.licensee)).to.deep.equal(items.map((i) => i.licensee));
    expect(body.items[7]!.license!.chainId).to.equal(chains[2]!.chainId);
    expect(new Set(body.items.map((r) => r.license!.id)).size).to.equal(120);
    // round-robin over the three chains
    const perChain = new Map<number, number>();
    for (const r of body.items) perChain.set(r.license!.chainId, (perChain.get(r.license!.chainId) ?? 0) + 1);
    expect(perChain.size).to.equal(3);

    const deadline = Date.now() + 60_000;
    let confirmed = 0;
    while (Date.now() < deadline) {
      confirmed = runtime.store.listLicenses({ status: "confirmed", limit: 1000 }).items.length;
      if (confirmed === 120) break;
      await sleep(100);
    }
    expect(confirmed).to.equal(120);
    expect(await minted()).to.equal(120);
  });

  it("replays a batch by item keys: same licenses, nothing new; a reused key with another body is that item's 409", async function () {
    const items = Array.from({ length: 10 }, (_, i) => ({
      productId: 1,
      licensee: randomAddress(),
      idempotencyKey: `bulk-replay-${i}`,
    }));
    const first = (await post(items)).body as BulkReply;
    expect(first.accepted).to.equal(10);
    const before = licenseCount();

    const again = await post(items);
    expect(again.status).to.equal(202);
    const replay = again.body as BulkReply;
    expect(tally(replay)).to.deep.equal({
      accepted: 0,
      replayed: 10,
      failed: 0,
    });
    expect(replay.items.every((r) => r.replayed === true && r.status === 202)).to.equal(true);
    expect(replay.items.map((r) => r.license!.id)).to.deep.equal(first.items.map((r) => r.license!.id));
    expect(licenseCount()).to.equal(before);

    // the key namespace is shared with the single endpoint's Idempotency-Key
    const single = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .set("Idempotency-Key", "bulk-replay-3")
      .send({ productId: 1, licensee: items[3]!.licensee });
    // the single endpoint answers 201 exactly when the license it returns is confirmed
    expect(single.status).to.equal(single.body.status === "confirmed" ? 201 : 202);
    expect(single.get("Idempotent-Replayed")).to.equal("true");
    expect(single.body.id).to.equal(first.items[3]!.license!.id);

    // item 1 reuses a key with another licensee: only that item fails, the others are accepted
    const mixed = await post([
      { productId: 1, licensee: randomAddress(), idempotencyKey: "bulk-replay-new-a" },
      { productId: 1, licensee: randomAddress(), idempotencyKey: "bulk-replay-0" },
      { productId: 1, licensee: randomAddress() },
    ]);
    expect(mixed.status).to.equal(202);
    const m = mixed.body as BulkReply;
    expect(tally(m)).to.deep.equal({
      accepted: 2,
      replayed: 0,
      failed: 1,
    });
    expect(m.items[1]).to.deep.include({ index: 1, status: 409 });
    expect(m.items[1]!.error).to.deep.include({
      code: "IDEMPOTENCY_CONFLICT",
      field: "items.1.idempotencyKey",
    });
    expect(m.items[0]!.status).to.equal(202);
    expect(m.items[2]!.status).to.equal(202);
    expect(licenseCount()).to.equal(before + 2);
  });

  it("group commit: concurrent requests with one key in the same commit give one license, created once", async function () {
    const before = licenseCount();
    const licensee = randomAddress();
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(runtime.app)
          .post("/v1/licenses")
          .set(...auth(KEYS.client))
          .set("Idempotency-Key", "group-same-key")
          .send({ productId: 1, licensee }),
      ),
    );
    expect(replies.map((r) => r.status)).to.deep.equal(Array(20).fill(202));
    expect(new Set(replies.map((r) => r.body.id)).size).to.equal(1);
    expect(replies.filter((r) => r.get("Idempotent-Replayed") === undefined)).to.have.length(1);
    expect(licenseCount()).to.equal(before + 1);
  });

  it("rejects the whole batch when one item is invalid, naming the item and field; nothing is accepted", async function () {
    const before = licenseCount();
    const good = (): Record<string, unknown> => ({ productId: 1, licensee: randomAddress() });
    const cases: [unknown[], string][] = [
      [[good(), good(), { productId: 1, licensee: "0x1234" }], "items.2.licensee"],
      [[good(), { productId: 99, licensee: randomAddress() }], "items.1.productId"],
      [[{ ...good(), colour: "red" }], "items.0.colour"],
      [[good(), { ...good(), chain: "no-such-chain" }], "items.1.chain"],
      [[good(), { ...good(), seats: 0 }], "items.1.seats"],
      [[good(), 42], "items.1"],
      [[{ ...good(), idempotencyKey: "has space" }], "items.0.idempotencyKey"],
      [
        [{ ...good(), idempotencyKey: "dup" }, good(), { ...good(), idempotencyKey: "dup" }],
        "items.2.idempotencyKey",
      ],
    ];
    for (const [items, field] of cases) {
      const res = await post(items);
      expect(res.status, field).to.equal(400);
      expect(res.body.code, field).to.equal("VALIDATION_FAILED");
      expect(res.body.field, JSON.stringify(res.body)).to.equal(field);
    }
    expect(licenseCount()).to.equal(before);
  });

  it("enforces its limits: item count, body size, scope, and one rate-limit token per item", async function () {
    const item = (): Record<string, unknown> => ({ productId: 1, licensee: randomAddress() });
    const empty = await post([]);
    expect([empty.status, empty.body.code, empty.body.field]).to.deep.equal([
      400,
      "VALIDATION_FAILED",
      "items",
    ]);
    const tooMany = await post(Array.from({ length: 151 }, item));
    expect([tooMany.status, tooMany.body.field]).to.deep.equal([400, "items"]);
    expect(tooMany.body.message).to.match(/at most 150 items/);
    const missing = await request(runtime.app)
      .post("/v1/licenses/batch")
      .set(...auth(KEYS.client))
      .send({});
    expect([missing.status, missing.body.field]).to.deep.equal([400, "items"]);
    // larger than the single endpoint's 4 KiB limit is fine here, larger than the bulk limit is not
    const big = await post(Array.from({ length: 40 }, item));
    expect(big.status).to.equal(202);
    const huge = await request(runtime.app)
      .post("/v1/licenses/batch")
      .set(...auth(KEYS.client))
      .set("Content-Type", "application/json")
      .send(JSON.stringify({ items: [{ ...item(), pad: "x".repeat(70 * 1024) }] }));
    expect([huge.status, huge.body.code]).to.deep.equal([413, "PAYLOAD_TOO_LARGE"]);
    const reader = await post([item()], KEYS.reader);
    expect([reader.status, reader.body.code]).to.deep.equal([403, "FORBIDDEN"]);

    // the other client's bucket (burst 1000, refill 1/s): 150 + 150 + ... until the batch no longer fits
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await post(Array.from({ length: 150 }, item), KEYS.other);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.body.code).to.equal("RATE_LIMITED");
        expect(Number(res.get("Retry-After"))).to.be.greaterThan(0);
        break;
      }
    }
    expect(statuses.slice(0, 6)).to.deep.equal([202, 202, 202, 202, 202, 202]);
    expect(statuses.at(-1)).to.equal(429);
  });

  it("CLI: issue-batch --file sends the items and prints one line per result", async function () {
    const { listen } = await import("../../server/index.js");
    const { run } = await import("../../server/cli.js");
    const { server, port } = await listen(runtime.app, 0);
    const file = path.join(tmp.dir, "items.json");
    writeFileSync(
      file,
      JSON.stringify([
        { productId: 1, licensee: randomAddress(), idempotencyKey: "cli-bulk-1" },
        { productId: 1, licensee: randomAddress(), idempotencyKey: "cli-bulk-2" },
      ]),
    );
    const lines: string[] = [];
    const original = { log: console.log, error: console.error };
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    console.error = console.log;
    try {
      const env = { LICENSE_API_KEY: KEYS.client, LICENSE_API_URL: `http://127.0.0.1:${port}` };
      expect(await run(["issue-batch", "--file", file], env)).to.equal(0);
      expect(lines[0]).to.equal("accepted 2, replayed 0, failed 0");
      expect(lines[1]).to.match(/^0 {4} [0-9a-f-]{36} {2}accepted chain \d+$/);
      lines.length = 0;
      expect(await run(["issue-batch", "--file", file], env)).to.equal(0);
      expect(lines[0]).to.equal("accepted 0, replayed 2, failed 0");
      lines.length = 0;
      writeFileSync(file, JSON.stringify({ items: [{ productId: 1, licensee: "0x12" }] }));
      expect(await run(["issue-batch", "--file", file], env)).to.equal(1);
      expect(lines[0]).to.match(/^error 400 VALIDATION_FAILED: .* \(field items\.0\.licensee\)$/);
    } finally {
      console.log = original.log;
      console.error = original.error;
      server.closeAllConnections();
      server.close();
    }
  });
});
