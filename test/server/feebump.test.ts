/**
 * A stuck transaction is replaced with higher fees (same nonce): our own chain (chain id 43102,
 * started here) with automining switched off, so the first transaction stays pending. Signer: dev
 * account 14 (on this chain only).
 */
import { expect } from "chai";
import path from "node:path";
import request from "supertest";
import { rpc, startChains, type ChainSet } from "../../launchers/chains.js";
import type { Runtime } from "../../server/index.js";
import {
  KEYS,
  deployLicenseToken,
  devKey,
  mintedCount,
  provider,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
} from "./helpers.js";

const SIGNER = devKey(14);

describe("server: fee bump of a stuck transaction", function () {
  this.timeout(120_000);
  let own: ChainSet | undefined;
  let runtime: Runtime | undefined;
  let tmp: ReturnType<typeof tempDir>;

  after(async function () {
    await runtime?.stop();
    await own?.stop();
    tmp?.cleanup();
  });

  it("replaces a pending issue transaction and records the mined replacement", async function () {
    own = await startChains({ chainIds: [43102] });
    const chain = own.chains[0]!;
    const { address } = await deployLicenseToken(chain.rpcUrl, SIGNER);
    tmp = tempDir();
    runtime = await startRuntime(
      testConfig([{ name: chain.name, chainId: chain.chainId, rpcUrl: chain.rpcUrl, contract: address }], {
        dbPath: path.join(tmp.dir, "db.sqlite"),
        transactions: { stuckAfterMs: 500, feeBumpPercent: 25, maxFeeBumps: 1 },
      }),
      SIGNER,
    );
    await rpc(chain.rpcUrl, "evm_setAutomine", [false]);

    const res = await request(runtime.app)
      .post("/v1/licenses")
      .set("Authorization", `Bearer ${KEYS.client}`)
      .send({ productId: 1, licensee: randomAddress() });
    expect(res.status).to.equal(202);
    const id = res.body.id as string;

    // the first transaction is pending; after 500 ms it is replaced
    let firstHash: string | undefined;
    let bumpedHash: string | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !bumpedHash) {
      const license = runtime.store.getLicense(id)!;
      if (license.status === "submitted") {
        firstHash ??= license.txHash;
        if (license.txHash !== firstHash) bumpedHash = license.txHash;
      }
      await sleep(50);
    }
    expect(firstHash, "a transaction was sent").to.be.a("string");
    expect(bumpedHash, "the stuck transaction was replaced").to.be.a("string");
    const metrics = await runtime.service.metrics.registry.getSingleMetricAsString("license_fee_bumps_total");
    expect(metrics).to.match(/license_fee_bumps_total\{chain="chain-43102"\} 1$/m);

    const p = provider(chain.rpcUrl);
    try {
      const replacement = await p.getTransaction(bumpedHash!);
      expect(replacement, "the replacement is in the node's mempool").to.not.equal(null);
      expect(await p.getTransaction(firstHash!), "the original was replaced").to.equal(null);
      await rpc(chain.rpcUrl, "evm_setAutomine", [true]);
      await rpc(chain.rpcUrl, "evm_mine", []);
      const confirmedBy = Date.now() + 30_000;
      while (Date.now() < confirmedBy && runtime.store.getLicense(id)!.status !== "confirmed")
        await sleep(50);
      const license = runtime.store.getLicense(id)!;
      expect(license.status).to.equal("confirmed");
      if (license.status !== "confirmed") return;
      const mined = await p.getTransaction(license.txHash);
      expect(mined!.nonce).to.equal(replacement!.nonce);
      expect(await mintedCount(chain.rpcUrl, address)).to.equal(1);
      expect(runtime.store.openBatches(chain.chainId)).to.deep.equal([]);
    } finally {
      p.destroy();
    }
  });
});
