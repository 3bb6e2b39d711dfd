/**
 * Renew and revoke under an `Idempotency-Key` (issue 21, part 6) against the shared local chains
 * (signer: dev account 19, fresh contracts): one on-chain action per key, read back from the chain.
 */
import { expect } from "chai";
import { Contract, Transaction, Wallet } from "ethers";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import { run } from "../../server/cli.js";
import { parseCommandLine } from "../../server/cli/args.js";
import { listen, type Runtime } from "../../server/index.js";
import { LICENSE_INTERFACE } from "../../server/contract.js";
import { actionBodyHash } from "../../server/service/actions.js";
import { SqliteStore } from "../../server/store.js";
import { BASE_SCHEMA, MIGRATIONS } from "../../server/store/schema.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  provider,
  randomAddress,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(19);
const UPDATE_TOPIC = LICENSE_INTERFACE.getEvent("SubscriptionUpdate")!.topicHash;
const REVOKED_TOPIC = LICENSE_INTERFACE.getEvent("LicenseRevoked")!.topicHash;

type License = { id: string; tokenId: string; chainId: number; blockNumber: number; expiresAt: number };

describe("server: idempotent renew and revoke (Idempotency-Key)", function () {
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

  const chainOf = (license: License): TestChain => chains.find((c) => c.chainId === license.chainId)!;

  async function issue(key = KEYS.client): Promise<License> {
    const res = await request(runtime.app)
      .post("/v1/licenses?wait=20000")
      .set(...auth(key))
      .send({ productId: 1, licensee: randomAddress(), durationSeconds: 86_400 });
    expect(res.status).to.equal(201);
    return res.body as License;
  }

  /** The token's expiry as the chain has it. */
  async function chainExpiry(license: License): Promise<number> {
    const chain = chainOf(license);
    const contract = new Contract(chain.contract, LICENSE_INTERFACE, provider(chain.rpcUrl));
    const record = (await contract.getFunction("license")(BigInt(license.tokenId))) as { expiresAt: bigint };
    return Number(record.expiresAt);
  }

  /** The token's events of `topic` after its issue block (renewals: SubscriptionUpdate; revokes). */
  async function countLogs(license: License, topic: string): Promise<number> {
    const chain = chainOf(license);
    const logs = await provider(chain.rpcUrl).getLogs({
      address: chain.contract,
      topics: [topic, `0x${BigInt(license.tokenId).toString(16).padStart(64, "0")}`],
      fromBlock: license.blockNumber + 1,
      toBlock: "latest",
    });
    return logs.length;
  }

  /**
   * A call from the service's signer sent outside the service (a crashed process's broadcast, or a change
   * behind its back); the worker then reloads its nonce, as after an outage.
   */
  async function sendAsSigner(license: License, fn: string, args: unknown[]) {
    const chain = chainOf(license);
    const signer = new Wallet(SIGNER, provider(chain.rpcUrl));
    const tx = await signer.sendTransaction({
      to: chain.contract,
      data: LICENSE_INTERFACE.encodeFunctionData(fn, args),
    });
    runtime.service.workers.get(license.chainId)!.healthRestored();
    return tx;
  }

  function renew(
    id: string,
    body: Record<string, unknown>,
    key?: string,
    apiKey = KEYS.client,
  ): request.Test {
    const req = request(runtime.app)
      .post(`/v1/licenses/${id}/renew`)
      .set(...auth(apiKey));
    if (key !== undefined) req.set("Idempotency-Key", key);
    return req.send(body);
  }

  function revoke(id: string, body: Record<string, unknown>, key?: string): request.Test {
    const req = request(runtime.app)
      .post(`/v1/licenses/${id}/revoke`)
      .set(...auth(KEYS.admin));
    if (key !== undefined) req.set("Idempotency-Key", key);
    return req.send(body);
  }

  it("renew twice with the same key: one on-chain renewal, the second answer replayed with the same body", async function () {
    const license = await issue();
    const before = await chainExpiry(license);
    const first = await renew(license.id, { durationSeconds: 3600 }, "renew-once");
    expect(first.status).to.equal(200);
    expect(first.headers["idempotent-replayed"]).to.equal(undefined);
    expect(first.body.expiresAt).to.equal(before + 3600);
    const again = await renew(license.id, { durationSeconds: 3600 }, "renew-once");
    expect(again.status).to.equal(200);
    expect(again.headers["idempotent-replayed"]).to.equal("true");
    expect(again.body).to.deep.equal(first.body);
    expect(await chainExpiry(license)).to.equal(before + 3600);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(1);
  });

  it("5 concurrent renews with the same key: one renewal, one original answer and 4 replays", async function () {
    const license = await issue();
    const before = await chainExpiry(license);
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map(() => renew(license.id, { durationSeconds: 600 }, "renew-burst")),
    );
    for (const res of answers) {
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(answers[0]!.body);
    }
    expect(answers.filter((r) => r.headers["idempotent-replayed"] === "true")).to.have.length(4);
    expect(await chainExpiry(license)).to.equal(before + 600);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(1);
  });

  it("the same key with another duration, another license or an issue request's key is a 409", async function () {
    const [a, b] = [await issue(), await issue()];
    expect((await renew(a.id, { durationSeconds: 60 }, "renew-k")).status).to.equal(200);
    const otherBody = await renew(a.id, { durationSeconds: 61 }, "renew-k");
    expect(otherBody.status).to.equal(409);
    expect(otherBody.body).to.include({ code: "IDEMPOTENCY_CONFLICT", field: "Idempotency-Key" });
    const otherLicense = await renew(b.id, { durationSeconds: 60 }, "renew-k");
    expect(otherLicense.status).to.equal(409);
    expect(otherLicense.body.code).to.equal("IDEMPOTENCY_CONFLICT");
    // one namespace with issue: a key used for an issue request is not free for a renew, nor the reverse
    const issued = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .set("Idempotency-Key", "issue-key")
      .send({ productId: 1, licensee: randomAddress() });
    expect(issued.status).to.equal(202);
    expect((await renew(a.id, { durationSeconds: 60 }, "issue-key")).body.code).to.equal(
      "IDEMPOTENCY_CONFLICT",
    );
    const issueWithRenewKey = await request(runtime.app)
      .post("/v1/licenses")
      .set(...auth(KEYS.client))
      .set("Idempotency-Key", "renew-k")
      .send({ productId: 1, licensee: randomAddress() });
    expect(issueWithRenewKey.status).to.equal(409);
    expect(issueWithRenewKey.body.code).to.equal("IDEMPOTENCY_CONFLICT");
    expect(await countLogs(a, UPDATE_TOPIC)).to.equal(1);
    expect(await countLogs(b, UPDATE_TOPIC)).to.equal(0);
    // keys are per API client: another client's same key is its own renewal
    const own = await issue(KEYS.other);
    const theirs = await renew(own.id, { durationSeconds: 60 }, "renew-k", KEYS.other);
    expect(theirs.status).to.equal(200);
    expect(theirs.headers["idempotent-replayed"]).to.equal(undefined);
    expect(await countLogs(own, UPDATE_TOPIC)).to.equal(1);
  });

  it("an invalid key is a 400 naming the header; without a key every renew extends (as before)", async function () {
    const license = await issue();
    const bad = await renew(license.id, { durationSeconds: 60 }, "with space");
    expect(bad.status).to.equal(400);
    expect(bad.body).to.include({ code: "VALIDATION_FAILED", field: "Idempotency-Key" });
    const before = await chainExpiry(license);
    expect((await renew(license.id, { durationSeconds: 60 })).status).to.equal(200);
    expect((await renew(license.id, { durationSeconds: 60 })).status).to.equal(200);
    expect(await chainExpiry(license)).to.equal(before + 120);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(2);
  });

  it("revoke with a key twice: one on-chain revoke, the second a replay (not a 409), another reason a 409", async function () {
    const license = await issue();
    const first = await revoke(license.id, { reason: "chargeback" }, "revoke-once");
    expect(first.status).to.equal(200);
    expect(first.body.revoked).to.equal(true);
    const again = await revoke(license.id, { reason: "chargeback" }, "revoke-once");
    expect(again.status).to.equal(200);
    expect(again.headers["idempotent-replayed"]).to.equal("true");
    expect(again.body).to.deep.equal(first.body);
    const other = await revoke(license.id, { reason: "fraud" }, "revoke-once");
    expect(other.status).to.equal(409);
    expect(other.body.code).to.equal("IDEMPOTENCY_CONFLICT");
    expect(await countLogs(license, REVOKED_TOPIC)).to.equal(1);
    // a renew with its own key after the revoke is refused, and frees that key (nothing was sent)
    const refused = await renew(license.id, { durationSeconds: 60 }, "renew-after-revoke");
    expect(refused.status).to.equal(409);
    expect(refused.body.code).to.equal("INVALID_STATE");
    expect(runtime.store.getAction("client", "renew-after-revoke")).to.equal(undefined);
  });

  it("a failed renew (the contract refuses it) frees its key: the retry with the key is tried again", async function () {
    const license = await issue();
    // revoked on-chain behind the service's back: the service still thinks it valid, the contract refuses
    await (await sendAsSigner(license, "revoke", [BigInt(license.tokenId), `0x${"0".repeat(64)}`])).wait();
    const refused = await renew(license.id, { durationSeconds: 60 }, "renew-refused");
    expect(refused.status).to.equal(409);
    expect(refused.body.code).to.equal("INVALID_STATE");
    expect(runtime.store.getAction("client", "renew-refused")).to.equal(undefined);
    expect((await renew(license.id, { durationSeconds: 60 }, "renew-refused")).body.code).to.equal(
      "INVALID_STATE",
    );
  });

  it("after a crash: a key claimed but never sent is sent once by the retry; a key sent and mined is not sent again", async function () {
    const license = await issue();
    const before = await chainExpiry(license);
    const body = { durationSeconds: 900 };
    // what a process that died right after the claim leaves (the outbox entry is written before any broadcast)
    const claim = {
      clientId: "client",
      key: "renew-crashed",
      licenseId: license.id,
      action: "renew" as const,
      bodyHash: actionBodyHash("renew", license.id, body),
    };
    expect(runtime.store.claimAction(claim)).to.deep.equal({ claimed: true });
    const retried = await renew(license.id, body, "renew-crashed");
    expect(retried.status).to.equal(200);
    expect(retried.headers["idempotent-replayed"]).to.equal("true");
    expect(await chainExpiry(license)).to.equal(before + 900);
    const done = runtime.store.getAction("client", "renew-crashed")!;
    expect(done.status).to.equal("done");
    expect(done.batch?.status).to.equal("done");

    // a process that died after the broadcast, before it stored the outcome: the retry finds the mined
    // transaction (the outbox entry, or else the chain) and only records it
    runtime.store.claimAction({ ...claim, key: "renew-crashed-2" });
    const tx = await sendAsSigner(license, "renewSubscription", [BigInt(license.tokenId), 900]);
    runtime.store.actionSent("client", "renew-crashed-2", {
      id: `crash-${tx.hash}`,
      chainId: license.chainId,
      nonce: tx.nonce,
      txHash: tx.hash,
      rawTx: Transaction.from(tx).serialized,
    });
    await tx.wait();
    const replayed = await renew(license.id, body, "renew-crashed-2");
    expect(replayed.status).to.equal(200);
    expect(replayed.headers["idempotent-replayed"]).to.equal("true");
    expect(await chainExpiry(license)).to.equal(before + 1800);
    expect(replayed.body.expiresAt).to.equal(before + 1800);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(2);

    // a process that died after signing and recording, before the broadcast reached the node: the
    // transaction is unknown to the chain (dropped), so the retry sends the renew, once
    runtime.store.claimAction({ ...claim, key: "renew-crashed-3" });
    const chain = chainOf(license);
    const unsent = await new Wallet(SIGNER).signTransaction({
      to: chain.contract,
      chainId: license.chainId,
      nonce: 1_000_000,
      gasLimit: 100_000,
      gasPrice: 1,
      data: LICENSE_INTERFACE.encodeFunctionData("renewSubscription", [BigInt(license.tokenId), 900]),
    });
    const unsentTx = Transaction.from(unsent);
    runtime.store.actionSent("client", "renew-crashed-3", {
      id: `crash-${unsentTx.hash!}`,
      chainId: license.chainId,
      nonce: 1_000_000,
      txHash: unsentTx.hash!,
      rawTx: unsent,
    });
    const resent = await renew(license.id, body, "renew-crashed-3");
    expect(resent.status).to.equal(200);
    expect(resent.body.expiresAt).to.equal(before + 2700);
    expect(await chainExpiry(license)).to.equal(before + 2700);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(3);
    expect((await renew(license.id, body, "renew-crashed-3")).body).to.deep.equal(resent.body);
    expect(await chainExpiry(license)).to.equal(before + 2700);
  });

  it("the CLI's renew --idempotency-key, run twice, renews once (over real HTTP)", async function () {
    const license = await issue();
    const before = await chainExpiry(license);
    const listening = await listen(runtime.app, 0);
    const env = { LICENSE_API_KEY: KEYS.client, LICENSE_API_URL: `http://127.0.0.1:${listening.port}` };
    const log = console.log;
    console.log = () => undefined; // the CLI prints the license
    try {
      const argv = ["renew", license.id, "--duration", "120", "--idempotency-key", "cli-renew-1", "--json"];
      expect(await run(argv, env)).to.equal(0);
      expect(await run(argv, env)).to.equal(0);
    } finally {
      console.log = log;
      await new Promise((resolve) => listening.server.close(resolve));
    }
    expect(await chainExpiry(license)).to.equal(before + 120);
    expect(await countLogs(license, UPDATE_TOPIC)).to.equal(1);
  });
});

describe("server: idempotency hash of renew and revoke (unit)", function () {
  it("is the same for the same action, license and body in any key order, different otherwise", function () {
    const id = "018f3f6e-0000-7000-8000-000000000000";
    const hash = actionBodyHash("renew", id, { durationSeconds: 60 });
    expect(hash).to.match(/^[0-9a-f]{64}$/);
    expect(actionBodyHash("renew", id, { durationSeconds: 60 })).to.equal(hash);
    expect(actionBodyHash("renew", id, { durationSeconds: 61 })).to.not.equal(hash);
    expect(actionBodyHash("revoke", id, { durationSeconds: 60 })).to.not.equal(hash);
    expect(actionBodyHash("renew", id.replace(/0$/, "1"), { durationSeconds: 60 })).to.not.equal(hash);
    expect(actionBodyHash("revoke", id, { a: 1, b: 2 })).to.equal(
      actionBodyHash("revoke", id, { b: 2, a: 1 }),
    );
  });
});

describe("server: CLI flags of renew and revoke (unit)", function () {
  it("take --idempotency-key; issue keeps its --key", function () {
    const id = "018f3f6e-0000-7000-8000-000000000000";
    const renew = parseCommandLine(["renew", id, "--duration", "60", "--idempotency-key", "k-1"]);
    expect(renew).to.deep.include({ command: "renew", id });
    expect(renew.values["idempotency-key"]).to.equal("k-1");
    expect(parseCommandLine(["revoke", id, "--idempotency-key", "k-2"]).values["idempotency-key"]).to.equal(
      "k-2",
    );
    expect(() => parseCommandLine(["get", id, "--idempotency-key", "k"])).to.throw(
      /unknown flag --idempotency-key/,
    );
  });
});

describe("server: store schema migrations (unit)", function () {
  it("upgrades a database of the base schema (user_version 0) in place, keeping its rows", function () {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, "old.sqlite");
      const old = new DatabaseSync(file);
      old.exec(BASE_SCHEMA);
      old
        .prepare("INSERT INTO idempotency (client_id, key, body_hash, license_id) VALUES (?, ?, ?, ?)")
        .run("client", "old-key", "h", "l");
      old.close();
      const store = new SqliteStore(file);
      const claim = { clientId: "client", key: "k", licenseId: "l", action: "renew" as const, bodyHash: "b" };
      expect(store.claimAction(claim)).to.deep.equal({ claimed: true });
      expect(store.claimAction(claim).claimed).to.equal(false);
      // the issue request's key stays, in the one namespace: not free for an action
      expect(store.claimAction({ ...claim, key: "old-key" })).to.deep.equal({ claimed: false });
      store.close();
      const reopened = new DatabaseSync(file);
      const version = reopened.prepare("PRAGMA user_version").get() as { user_version: number };
      expect(version.user_version).to.equal(MIGRATIONS.length);
      reopened.close();
      // opening it again applies nothing twice
      const again = new SqliteStore(file);
      expect(again.getAction("client", "k")?.status).to.equal("pending");
      again.close();
    } finally {
      tmp.cleanup();
    }
  });
});
