/**
 * Failover: two shared chains plus one chain of our own (chain id 43101, started here) that is
 * stopped in the middle of a run and restarted later. Every accepted request is issued; requests
 * not yet sent to the stopped chain move to the others; the chain is marked down, then up again.
 * Signer: dev account 14.
 */
import { expect } from "chai";
import path from "node:path";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import { startChains, type ChainSet } from "../../launchers/chains.js";
import type { Runtime } from "../../server/index.js";
import {
  KEYS,
  deployLicenseToken,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const SIGNER = devKey(14);
const OWN_CHAIN_ID = 43101;
const auth: [string, string] = ["Authorization", `Bearer ${KEYS.admin}`];

describe("server: failover when a chain stops", function () {
  this.timeout(240_000);
  let own: ChainSet | undefined;
  let chains: TestChain[];
  let runtime: Runtime | undefined;
  let tmp: ReturnType<typeof tempDir>;

  before(async function () {
    const shared = await getChains();
    own = await startChains({ chainIds: [OWN_CHAIN_ID] });
    chains = [];
    for (const c of [...shared.chains.slice(0, 2), own.chains[0]!]) {
      const { address } = await deployLicenseToken(c.rpcUrl, SIGNER);
      chains.push({ name: c.name, chainId: c.chainId, rpcUrl: c.rpcUrl, contract: address });
    }
    tmp = tempDir();
    runtime = await startRuntime(
      testConfig(chains, {
        dbPath: path.join(tmp.dir, "db.sqlite"),
        batching: { maxSize: 5, maxWaitMs: 20 },
      }),
      SIGNER,
    );
  });

  after(async function () {
    await runtime?.stop();
    await own?.stop();
    tmp?.cleanup();
  });

  async function chainState(chainId: number): Promise<{ healthy: boolean }> {
    const res = await request(runtime!.app)
      .get("/v1/chains")
      .set(...auth);
    return (res.body.items as { chainId: number; healthy: boolean }[]).find((c) => c.chainId === chainId)!;
  }

  async function waitUntil(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await check()) return;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("moves unsent requests to the other chains, marks the chain down and up, loses nothing", async function () {
    const app = runtime!.app;
    const [a, b, x] = chains as [TestChain, TestChain, TestChain];
    const ids: string[] = [];
    const send = async (n: number): Promise<void> => {
      const responses = await Promise.all(
        Array.from({ length: n }, () =>
          request(app)
            .post("/v1/licenses")
            .set(...auth)
            .send({ productId: 1, licensee: randomAddress() }),
        ),
      );
      for (const res of responses) {
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
        ids.push(res.body.id as string);
      }
    };

    for (let wave = 0; wave < 4; wave++) await send(15);
    await waitUntil(
      "a license confirmed on our chain",
      async () =>
        runtime!.store.listLicenses({ chainId: x.chainId, status: "confirmed", limit: 1 }).items.length > 0,
    );
    const lostWithTheNode = runtime!.store.listLicenses({ chainId: x.chainId, status: "confirmed", limit: 1 })
      .items[0]!;
    const sentBeforeStop = ids.length;
    // stop our chain while requests keep coming
    const stopping = own!.stop();
    await send(15);
    await stopping;
    const issuedOnXBeforeStop = runtime!.store.listLicenses({
      chainId: x.chainId,
      status: "confirmed",
      limit: 1000,
    }).items.length;
    await waitUntil("the chain marked down", async () => !(await chainState(x.chainId)).healthy);
    for (let wave = 0; wave < 4; wave++) await send(15);

    // every license not sent to the stopped chain before it stopped is confirmed on the others
    await waitUntil("all licenses off the stopped chain confirmed", async () => {
      const open = runtime!.store
        .listLicenses({ limit: 10_000 })
        .items.filter((l) => l.status !== "confirmed");
      return open.every((l) => l.chainId === x.chainId && l.status === "submitted");
    });
    const failedOver = runtime!.store
      .listLicenses({ limit: 10_000 })
      .items.filter((l) => l.reason.startsWith(`failover from chain ${x.chainId}`));
    const afterStop = ids.slice(sentBeforeStop).map((id) => runtime!.store.getLicense(id)!);
    expect(afterStop.filter((l) => l.chainId === x.chainId && l.status === "accepted")).to.deep.equal([]);
    // a license on the stopped chain cannot be verified right now
    const onX = runtime!.store.listLicenses({ chainId: x.chainId, status: "confirmed", limit: 1 }).items[0];
    if (onX) {
      const verify = await request(app)
        .get(`/v1/licenses/${onX.id}/verify`)
        .set(...auth);
      expect(verify.body.code).to.equal("CHAIN_UNAVAILABLE");
    }

    // restart the chain on the same port; a fresh node: redeploy (same deployer, nonce 0 → same address)
    own = await startChains({ chainIds: [OWN_CHAIN_ID], ports: [own!.chains[0]!.port] });
    const redeployed = await deployLicenseToken(x.rpcUrl, SIGNER);
    expect(redeployed.address).to.equal(x.contract);
    await waitUntil("the chain marked up", async () => (await chainState(x.chainId)).healthy);
    // the restarted node does not have what the old one mined: verify reads the chain and says so
    const gone = await request(app)
      .get(`/v1/licenses/${lostWithTheNode.id}/verify`)
      .set(...auth);
    expect(gone.body).to.include({ code: "NOT_FOUND", valid: false });
    await waitUntil("every license confirmed", async () =>
      ids.every((id) => runtime!.store.getLicense(id)!.status === "confirmed"),
    );

    const all = ids.map((id) => runtime!.store.getLicense(id)!);
    const count = (chainId: number): number => all.filter((l) => l.chainId === chainId).length;
    expect(count(a.chainId) + count(b.chainId) + count(x.chainId)).to.equal(ids.length);
    expect(await mintedCount(a.rpcUrl, a.contract)).to.equal(count(a.chainId));
    expect(await mintedCount(b.rpcUrl, b.contract)).to.equal(count(b.chainId));
    // the restarted node lost what it had mined; the licenses still in flight to it were issued again there
    expect(await mintedCount(x.rpcUrl, x.contract)).to.equal(count(x.chainId) - issuedOnXBeforeStop);
    console.log(
      `      ${ids.length} licenses: ${count(a.chainId)}/${count(b.chainId)}/${count(x.chainId)} on the three chains, ` +
        `${failedOver.length} failed over, ${issuedOnXBeforeStop} issued on the stopped chain before it stopped`,
    );
    expect(failedOver.length + afterStop.filter((l) => l.chainId !== x.chainId).length).to.be.greaterThan(0);
  });
});
