import { expect } from "chai";
import { takeToken } from "../../server/auth.js";
import { NonceManager, isConnectionError, isNonceError } from "../../server/nonce.js";
import { canonicalJson } from "../../server/ids.js";
import { SqliteStore, type NewLicense } from "../../server/store.js";

function license(id: string, chainId = 1): NewLicense {
  return {
    id,
    clientId: "c1",
    productId: 1,
    licensee: "0x" + "ab".repeat(20),
    expiresAt: 0,
    seats: 1,
    requestRef: `0x${id.padStart(64, "0")}`,
    termsHash: "0x" + "11".repeat(32),
    chainId,
    policy: "round-robin",
    reason: "test",
    candidates: [chainId, 2],
  };
}

describe("server: store (node:sqlite, in memory)", function () {
  let store: SqliteStore;
  beforeEach(() => (store = new SqliteStore(":memory:")));
  afterEach(() => store.close());

  it("walks the lifecycle accepted → submitted → confirmed with the fields of each state", function () {
    store.insertLicense(license("a1"));
    store.insertLicense(license("a2"));
    expect(store.acceptedFor(1, 10).map((l) => l.id)).to.deep.equal(["a1", "a2"]);
    store.createBatch({
      id: "b1",
      chainId: 1,
      nonce: 7,
      txHash: "0xtx",
      rawTx: "0xraw",
      licenseIds: ["a1", "a2"],
    });
    const submitted = store.getLicense("a1")!;
    expect(submitted.status).to.equal("submitted");
    if (submitted.status === "submitted") expect(submitted.txHash).to.equal("0xtx");
    expect(store.openBatches(1).map((b) => [b.id, b.nonce, b.licenseIds])).to.deep.equal([
      ["b1", 7, ["a1", "a2"]],
    ]);
    store.settleBatch("b1", new Map([["a1", { tokenId: "5", txHash: "0xtx", blockNumber: 9 }]]), "done");
    const confirmed = store.getLicense("a1")!;
    expect(confirmed).to.include({ status: "confirmed", tokenId: "5", blockNumber: 9 });
    // the license the receipt did not cover goes back to the queue
    expect(store.getLicense("a2")!.status).to.equal("accepted");
    expect(store.openBatches(1)).to.deep.equal([]);
    expect(store.confirmedCounts().get(1)).to.equal(1);
    expect(store.queueDepths().get(1)).to.equal(1);
  });

  it("refuses to batch a license that moved to another chain, and reassigns only accepted ones", function () {
    store.insertLicense(license("a1"));
    expect(store.reassign("a1", 2, "failover")).to.equal(true);
    expect(() =>
      store.createBatch({ id: "b", chainId: 1, nonce: 0, txHash: "0x", rawTx: "0x", licenseIds: ["a1"] }),
    ).to.throw(/not accepted/);
    expect(store.openBatches(1)).to.deep.equal([]); // rolled back
    store.createBatch({ id: "b2", chainId: 2, nonce: 0, txHash: "0x", rawTx: "0x", licenseIds: ["a1"] });
    expect(store.reassign("a1", 1, "again")).to.equal(false);
  });

  it("stores idempotency keys per client with the body hash", function () {
    const first = store.insertLicense(license("a1"), { key: "k", bodyHash: "h1" });
    expect(first.created).to.equal(true);
    const again = store.insertLicense(license("a2"), { key: "k", bodyHash: "h2" });
    expect(again).to.deep.include({ created: false, sameBody: false });
    expect(again.license.id).to.equal("a1");
    expect(store.findIdempotent("c1", "k")?.bodyHash).to.equal("h1");
    expect(store.findIdempotent("c2", "k")).to.equal(undefined);
    expect(store.getLicense("a2")).to.equal(undefined);
  });

  it("pages with a cursor and filters", function () {
    for (let i = 0; i < 5; i++) store.insertLicense(license(`p${i}`, i % 2 === 0 ? 1 : 2));
    const page1 = store.listLicenses({ limit: 2 });
    expect(page1.items.map((l) => l.id)).to.deep.equal(["p0", "p1"]);
    const page2 = store.listLicenses({ limit: 2, after: page1.next! });
    expect(page2.items.map((l) => l.id)).to.deep.equal(["p2", "p3"]);
    const last = store.listLicenses({ limit: 2, after: page2.next! });
    expect(last.items.map((l) => l.id)).to.deep.equal(["p4"]);
    expect(last.next).to.equal(undefined);
    expect(store.listLicenses({ limit: 10, chainId: 2 }).items.map((l) => l.id)).to.deep.equal(["p1", "p3"]);
    store.fail(["p1"], "CHAIN_TX_FAILED", "x");
    expect(store.listLicenses({ limit: 10, status: "failed" }).items.map((l) => l.id)).to.deep.equal(["p1"]);
  });
});

describe("server: nonce manager, error classes, rate limit", function () {
  it("allocates nonces locally in sequence and reloads after a resync", async function () {
    let calls = 0;
    let chainCount = 4;
    const nonces = new NonceManager(async () => {
      calls++;
      return chainCount;
    });
    expect(await nonces.peek()).to.equal(4);
    nonces.commit(4);
    expect(await nonces.peek()).to.equal(5);
    nonces.commit(5);
    expect(calls).to.equal(1);
    expect(() => nonces.commit(9)).to.throw(/out of order/);
    chainCount = 11;
    nonces.resync();
    expect(await nonces.peek()).to.equal(11);
    expect(calls).to.equal(2);
  });

  it("tells nonce errors and certain non-delivery apart from unknown outcomes", function () {
    expect(isNonceError(new Error("Nonce too low. Expected nonce to be 3 but got 2."))).to.equal(true);
    expect(isNonceError(Object.assign(new Error("x"), { code: "NONCE_EXPIRED" }))).to.equal(true);
    expect(
      isConnectionError(
        new Error("request failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") }),
      ),
    ).to.equal(true);
    expect(isNonceError(new Error("timeout"))).to.equal(false);
    expect(isConnectionError(new Error("timeout"))).to.equal(false);
  });

  it("token bucket: burst, then one per 1/rate seconds, with a Retry-After", function () {
    let bucket = undefined as Parameters<typeof takeToken>[0];
    const results: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const r = takeToken(bucket, 1000, 2, 3);
      bucket = r.bucket;
      results.push(r.allowed);
    }
    expect(results).to.deep.equal([true, true, true, false]);
    expect(takeToken(bucket, 1000, 2, 3).retryAfterSeconds).to.equal(1);
    expect(takeToken(bucket, 1500, 2, 3).allowed).to.equal(true);
  });

  it("canonical JSON ignores key order and undefined fields", function () {
    expect(canonicalJson({ b: 1, a: [2, { d: undefined, c: "x" }] })).to.equal(
      canonicalJson({ a: [2, { c: "x" }], b: 1 }),
    );
  });
});
