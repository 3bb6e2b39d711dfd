/**
 * Selection policies over the three shared chains (signer: dev account 12, fresh contracts): the
 * confirmed licenses per chain, counted in the service and on-chain, match each policy's definition.
 */
import { expect } from "chai";
import path from "node:path";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import type { PolicyName } from "../../server/config.js";
import type { Runtime } from "../../server/index.js";
import {
  KEYS,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(12);

describe("server: policy distribution over three chains", function () {
  this.timeout(180_000);
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;
  let runtime: Runtime | undefined;

  before(async function () {
    const set = await getChains();
    chains = await deployOnChains(set.chains, SIGNER);
    tmp = tempDir();
  });

  afterEach(async function () {
    await runtime?.stop();
    runtime = undefined;
  });

  after(function () {
    tmp?.cleanup();
  });

  /** Issues `n` licenses one after the other (each waited for) and returns confirmed counts per chain, in the service and on-chain. */
  async function run(
    policy: PolicyName,
    n: number,
    weights: number[] | undefined,
    body: (i: number) => Record<string, unknown>,
  ): Promise<{ service: number[]; onChain: number[]; reasons: string[] }> {
    const before = await Promise.all(chains.map((c) => mintedCount(c.rpcUrl, c.contract)));
    const configured = chains.map((c, i) => ({ ...c, weight: weights?.[i] ?? 1 }));
    runtime = await startRuntime(
      testConfig(configured, { policy, dbPath: path.join(tmp.dir, `${policy}.sqlite`) }),
      SIGNER,
    );
    const counts = chains.map(() => 0);
    const reasons: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(runtime.app)
        .post("/v1/licenses?wait=20000")
        .set("Authorization", `Bearer ${KEYS.client}`)
        .send({ productId: 1, licensee: randomAddress(), ...body(i) });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body.policy).to.equal(policy);
      counts[chains.findIndex((c) => c.chainId === res.body.chainId)]!++;
      reasons.push(res.body.reason as string);
    }
    const after = await Promise.all(chains.map((c) => mintedCount(c.rpcUrl, c.contract)));
    return { service: counts, onChain: after.map((a, i) => a - before[i]!), reasons };
  }

  it("round-robin: an equal share per chain", async function () {
    const { service, onChain } = await run("round-robin", 12, undefined, () => ({}));
    expect(service).to.deep.equal([4, 4, 4]);
    expect(onChain).to.deep.equal(service);
  });

  it("weighted 3:2:1: shares proportional to the weights", async function () {
    const { service, onChain, reasons } = await run("weighted", 12, [3, 2, 1], () => ({}));
    expect(service).to.deep.equal([6, 4, 2]);
    expect(onChain).to.deep.equal(service);
    expect(reasons[0]).to.match(/^weighted 3\/6/);
  });

  it("least-loaded: idle chains share evenly, each pick had the shortest queue", async function () {
    const { service, onChain, reasons } = await run("least-loaded", 9, undefined, () => ({}));
    expect(service).to.deep.equal([3, 3, 3]);
    expect(onChain).to.deep.equal(service);
    expect(reasons.every((r) => r === "least-loaded: queue depth 0")).to.equal(true);
  });

  it("client-preference: the client's first choice while it is healthy", async function () {
    const preferred = [chains[1]!.chainId, chains[0]!.chainId];
    const { service, onChain } = await run("client-preference", 6, undefined, (i) =>
      i % 2 === 0 ? { chain: preferred } : { chain: chains[2]!.name },
    );
    expect(service).to.deep.equal([0, 3, 3]);
    expect(onChain).to.deep.equal(service);
  });

  it("product-pinned: the product's chain only", async function () {
    const { service, onChain } = await run("product-pinned", 4, undefined, () => ({ productId: 2 }));
    expect(service).to.deep.equal([0, 0, 4]);
    expect(onChain).to.deep.equal(service);
  });

  it("splits batches that would need more gas than a transaction may use", async function () {
    const chain = { ...chains[0]!, maxTxGas: 3_000_000 };
    const before = await mintedCount(chain.rpcUrl, chain.contract);
    runtime = await startRuntime(
      testConfig([chain], {
        dbPath: path.join(tmp.dir, "split.sqlite"),
        batching: { maxSize: 300, maxWaitMs: 200 },
      }),
      SIGNER,
    );
    const responses = await Promise.all(
      Array.from({ length: 60 }, () =>
        request(runtime!.app)
          .post("/v1/licenses")
          .set("Authorization", `Bearer ${KEYS.client}`)
          .send({ productId: 1, licensee: randomAddress() }),
      ),
    );
    expect(responses.every((r) => r.status === 202)).to.equal(true);
    const deadline = Date.now() + 60_000;
    while (
      Date.now() < deadline &&
      runtime.store.listLicenses({ status: "confirmed", limit: 100 }).items.length < 60
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const confirmed = runtime.store.listLicenses({ status: "confirmed", limit: 100 }).items;
    expect(confirmed).to.have.length(60);
    const perTx = new Map<string, number>();
    for (const l of confirmed)
      if (l.status === "confirmed") perTx.set(l.txHash, (perTx.get(l.txHash) ?? 0) + 1);
    // ~120k gas per license with 20 % headroom: at most ~20 licenses fit 3M gas
    expect(Math.max(...perTx.values())).to.be.within(2, 21);
    expect(perTx.size).to.be.at.least(3);
    expect((await mintedCount(chain.rpcUrl, chain.contract)) - before).to.equal(60);
  });
});
