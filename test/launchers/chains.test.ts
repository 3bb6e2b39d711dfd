import { expect } from "chai";
import { ContractFactory, JsonRpcProvider, Wallet, type Contract } from "ethers";
import { startChains } from "../../launchers/chains.js";
import { pidAlive } from "../../launchers/process.js";
import { readArtifact } from "../support/artifacts.js";
import { getChains, TEST_CHAIN_IDS } from "../fixtures/infra.js";
import { eventually, launchCli, processesMatching } from "../support/procs.js";

// Hardhat's well-known development account #0 (public test key, funded on every local node).
const DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

describe("chain launcher", function () {
  it("starts three chains that answer with their own chain ids and run contracts", async function () {
    const { chains } = await getChains();
    expect(chains.map((c) => c.chainId)).to.deep.equal([...TEST_CHAIN_IDS]);
    expect(new Set(chains.map((c) => c.port)).size).to.equal(chains.length);
    const echo = readArtifact("contracts/testing/ChainIdEcho.sol", "ChainIdEcho");
    for (const chain of chains) {
      expect(chain.rpcUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const provider = new JsonRpcProvider(chain.rpcUrl, undefined, { cacheTimeout: -1 });
      try {
        expect(Number((await provider.getNetwork()).chainId)).to.equal(chain.chainId);
        const deployer = new Wallet(DEV_KEY, provider);
        const factory = new ContractFactory(echo.abi as never, echo.bytecode, deployer);
        const contract = (await factory.deploy()) as Contract;
        await contract.waitForDeployment();
        expect(await provider.getCode(await contract.getAddress())).to.not.equal("0x");
        expect(Number(await contract.getFunction("chainId")())).to.equal(chain.chainId);
        expect(Number(await contract.getFunction("deployedOnChainId")())).to.equal(chain.chainId);
      } finally {
        provider.destroy();
      }
    }
  });

  it("rejects duplicate chain ids before starting anything", async function () {
    let error: unknown;
    try {
      await startChains({ chainIds: [5, 5] });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.contain("distinct");
  });

  it("stop() ends every node and frees its port", async function () {
    const set = await startChains({ chainIds: [41001] });
    const [chain] = set.chains;
    expect(processesMatching(`--port ${chain!.port} `).length).to.be.greaterThan(0);
    await set.stop();
    expect(set.pids.some(pidAlive)).to.equal(false);
    // The node gets SIGTERM from its guard; give the kernel a moment to finish its exit.
    const gone = await eventually(() => processesMatching(`--port ${chain!.port} `).length === 0, 5_000);
    expect(gone, "chain node still running after stop()").to.equal(true);
  });

  it("leaves no node behind when the launching process is killed with SIGKILL", async function () {
    const { child, ready } = await launchCli(["chains", "--count", "2", "--first-chain-id", "42001"]);
    const chains = ready.chains as { port: number; rpcUrl: string }[];
    const pids = ready.pids as number[];
    expect(chains).to.have.length(2);
    expect(pids.every(pidAlive)).to.equal(true);
    for (const chain of chains)
      expect(processesMatching(`--port ${chain.port} `).length).to.be.greaterThan(0);

    child.kill("SIGKILL");
    const gone = await eventually(
      () => !pids.some(pidAlive) && chains.every((c) => processesMatching(`--port ${c.port} `).length === 0),
      15_000,
    );
    expect(gone, "chain processes still running after the launcher was killed").to.equal(true);
  });

  it("leaves no node behind when the launcher's whole process group gets SIGTERM (as `timeout` sends it)", async function () {
    const { child, ready } = await launchCli(
      ["chains", "--count", "1", "--first-chain-id", "42011"],
      120_000,
      { detached: true },
    );
    const chains = ready.chains as { port: number }[];
    const pids = ready.pids as number[];
    expect(processesMatching(`--port ${chains[0]!.port} `).length).to.be.greaterThan(0);

    // The guards are in the launcher's group and get the signal too; the node runs in its own session.
    process.kill(-child.pid!, "SIGTERM");
    const gone = await eventually(
      () => !pids.some(pidAlive) && chains.every((c) => processesMatching(`--port ${c.port} `).length === 0),
      20_000,
    );
    expect(gone, "chain node still running after its launcher's process group got SIGTERM").to.equal(true);
  });
});
