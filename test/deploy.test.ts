import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Contract, JsonRpcProvider, Wallet, getCreateAddress, parseEther } from "ethers";
import {
  DEFAULT_ADMIN_DELAY,
  DeployError,
  deployAll,
  deployerKeyFor,
  deploymentsFileSchema,
  isLocalDevChain,
  type ChainTarget,
} from "../scripts/deploy.js";
import { LICENSE_ABI } from "../server/contract.js";
import { getChains } from "./fixtures/infra.js";
import { ROOT } from "./support/procs.js";

// Hardhat's well-known development account #0 (public test key, funded on every local node).
const DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const ISSUER_ROLE = "0x114e74f6ea3bd819998f78687bfcb11b140da08e9b7d222fa9c1f1ba1f2aa122"; // keccak256("ISSUER_ROLE")

/** A fresh deployer (nonce 0 everywhere), funded from dev account 0 on every chain. */
async function freshDeployer(chains: ChainTarget[]): Promise<Wallet> {
  const wallet = Wallet.createRandom();
  for (const chain of chains) {
    const provider = new JsonRpcProvider(chain.rpcUrl, undefined, { cacheTimeout: -1 });
    provider.pollingInterval = 100;
    try {
      const funder = new Wallet(DEV_KEY, provider);
      await (await funder.sendTransaction({ to: wallet.address, value: parseEther("10") })).wait();
    } finally {
      provider.destroy();
    }
  }
  return new Wallet(wallet.privateKey);
}

async function withProvider<T>(rpcUrl: string, use: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
  const provider = new JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1 });
  try {
    return await use(provider);
  } finally {
    provider.destroy();
  }
}

async function rejection(promise: Promise<unknown>): Promise<DeployError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(DeployError);
    return error as DeployError;
  }
  throw new Error("expected a rejection");
}

describe("scripts/deploy.ts", function () {
  let dir: string;
  let chains: ChainTarget[];
  let chainIds: number[];

  before(async function () {
    const set = await getChains();
    chains = set.chains.map((c) => ({ name: c.name, rpcUrl: c.rpcUrl }));
    chainIds = set.chains.map((c) => c.chainId);
  });

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), "deploy-test-"));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  describe("isLocalDevChain", function () {
    it("accepts loopback endpoints with development chain ids only", function () {
      expect(isLocalDevChain("http://127.0.0.1:8545", 31337)).to.equal(true);
      expect(isLocalDevChain("http://localhost:8545", 31339)).to.equal(true);
      expect(isLocalDevChain("http://[::1]:8545", 1337)).to.equal(true);
      expect(isLocalDevChain("http://127.0.0.1:8545", 1)).to.equal(false);
      expect(isLocalDevChain("http://127.0.0.1:8545", 11155111)).to.equal(false);
      expect(isLocalDevChain("https://rpc.example.org", 31337)).to.equal(false);
      expect(isLocalDevChain("http://10.0.0.5:8545", 31337)).to.equal(false);
    });

    it("deployerKeyFor: an explicit key wins; the dev key only for dev chains; else NO_DEPLOYER_KEY", function () {
      const key = Wallet.createRandom().privateKey;
      expect(deployerKeyFor("https://rpc.example.org", 1, key)).to.equal(key);
      expect(deployerKeyFor("http://127.0.0.1:8545", 31337, undefined)).to.equal(DEV_KEY);
      expect(deployerKeyFor("http://127.0.0.1:8545", 31337, "")).to.equal(DEV_KEY);
      for (const [url, id] of [
        ["https://rpc.example.org", 1],
        ["http://127.0.0.1:8545", 1],
        ["https://rpc.example.org", 31337],
      ] as const) {
        let error: unknown;
        try {
          deployerKeyFor(url, id, undefined);
        } catch (caught) {
          error = caught;
        }
        expect(error).to.be.instanceOf(DeployError);
        expect((error as DeployError).code).to.equal("NO_DEPLOYER_KEY");
        expect((error as DeployError).message).to.contain("DEPLOYER_PRIVATE_KEY");
      }
    });
  });

  it("deploys to three chains at the same address and writes the deployments file", async function () {
    const deployer = await freshDeployer(chains);
    const issuer = Wallet.createRandom().address;
    const outFile = path.join(dir, "local.json");
    const lines: string[] = [];
    const { file, results, deployments } = await deployAll({
      chains,
      outFile,
      deployerKey: deployer.privateKey,
      issuer,
      baseURI: "https://licenses.example/",
      log: (line) => lines.push(line),
    });

    const expected = getCreateAddress({ from: deployer.address, nonce: 0 });
    expect(file).to.equal(outFile);
    expect(results.map((r) => [r.chainId, r.status, r.deployment.address])).to.deep.equal(
      chainIds.map((id) => [id, "deployed", expected]),
    );
    expect(lines.join("\n")).to.not.contain(deployer.privateKey.slice(2));

    const written = JSON.parse(readFileSync(outFile, "utf8")) as unknown;
    expect(deploymentsFileSchema.parse(written)).to.deep.equal(deployments);
    expect(Object.keys(deployments.chains)).to.deep.equal(chainIds.map(String));
    for (const [index, chain] of chains.entries()) {
      const entry = deployments.chains[String(chainIds[index])]!;
      expect(Object.keys(entry).sort()).to.deep.equal(["address", "blockNumber", "deployer", "txHash"]);
      expect(entry.address).to.equal(expected);
      expect(entry.deployer).to.equal(deployer.address);
      await withProvider(chain.rpcUrl, async (provider) => {
        const receipt = await provider.getTransactionReceipt(entry.txHash);
        expect(receipt?.blockNumber).to.equal(entry.blockNumber);
        expect(receipt?.contractAddress).to.equal(expected);
        expect(receipt?.from).to.equal(deployer.address);
        const token = new Contract(expected, LICENSE_ABI, provider);
        expect(await token.getFunction("ISSUER_ROLE")()).to.equal(ISSUER_ROLE);
        expect(await token.getFunction("hasRole")(ISSUER_ROLE, issuer)).to.equal(true);
        const adminRole = (await token.getFunction("DEFAULT_ADMIN_ROLE")()) as string;
        expect(await token.getFunction("hasRole")(adminRole, deployer.address)).to.equal(true);
        // AccessControlDefaultAdminRules: the deployer is the only admin, transfers wait the default delay.
        expect(await token.getFunction("defaultAdmin")()).to.equal(deployer.address);
        expect(await token.getFunction("defaultAdminDelay")()).to.equal(BigInt(DEFAULT_ADMIN_DELAY));
        expect(await token.getFunction("supportsInterface")("0x8c65f84d")).to.equal(true);
      });
    }
  });

  it("is idempotent: a second run skips every chain and leaves the file unchanged", async function () {
    const deployer = await freshDeployer(chains);
    const outFile = path.join(dir, "local.json");
    await deployAll({ chains, outFile, deployerKey: deployer.privateKey });
    const before = readFileSync(outFile, "utf8");
    const again = await deployAll({ chains, outFile, deployerKey: deployer.privateKey });
    expect(again.results.map((r) => r.status)).to.deep.equal(["skipped", "skipped", "skipped"]);
    expect(readFileSync(outFile, "utf8")).to.equal(before);
  });

  it("deploys again on a chain whose recorded address has no code (a reset chain)", async function () {
    const deployer = await freshDeployer(chains);
    const outFile = path.join(dir, "local.json");
    const first = await deployAll({ chains, outFile, deployerKey: deployer.privateKey });
    const [resetId, ...otherIds] = chainIds.map(String);
    const stale = { ...first.deployments.chains[resetId!]!, address: Wallet.createRandom().address };
    writeFileSync(outFile, JSON.stringify({ chains: { ...first.deployments.chains, [resetId!]: stale } }));

    const second = await deployAll({ chains, outFile, deployerKey: deployer.privateKey });
    expect(second.results.map((r) => r.status)).to.deep.equal(["deployed", "skipped", "skipped"]);
    const redeployed = second.deployments.chains[resetId!]!;
    expect(redeployed.address).to.equal(getCreateAddress({ from: deployer.address, nonce: 1 }));
    for (const id of otherIds)
      expect(second.deployments.chains[id]).to.deep.equal(first.deployments.chains[id]);
  });

  it("uses Hardhat's dev account 0 on local dev chains when no key is given", async function () {
    const saved = process.env.DEPLOYER_PRIVATE_KEY;
    delete process.env.DEPLOYER_PRIVATE_KEY;
    try {
      const { results } = await deployAll({ chains, outFile: path.join(dir, "dev.json") });
      for (const [index, result] of results.entries()) {
        expect(result.deployment.deployer).to.equal(DEV_ADDRESS);
        await withProvider(chains[index]!.rpcUrl, async (provider) => {
          expect(await provider.getCode(result.deployment.address)).to.not.equal("0x");
        });
      }
    } finally {
      if (saved !== undefined) process.env.DEPLOYER_PRIVATE_KEY = saved;
    }
  });

  it("the CLI deploys with DEPLOYER_PRIVATE_KEY, prints progress and never the key", async function () {
    const deployer = await freshDeployer(chains);
    const outFile = path.join(dir, "cli.json");
    const args = ["--import", "tsx", "scripts/deploy.ts", ...chains.flatMap((c) => ["--rpc", c.rpcUrl])];
    const run = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [...args, "--out", outFile], {
        cwd: ROOT,
        env: { ...process.env, DEPLOYER_PRIVATE_KEY: deployer.privateKey },
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.once("error", reject);
      child.once("exit", (code) => resolve({ code, output }));
    });
    expect(run.code, run.output).to.equal(0);
    expect(run.output).to.contain("3 deployed, 0 skipped");
    expect(run.output).to.not.contain(deployer.privateKey.slice(2));
    const file = deploymentsFileSchema.parse(JSON.parse(readFileSync(outFile, "utf8")));
    const expected = getCreateAddress({ from: deployer.address, nonce: 0 });
    expect(Object.values(file.chains).map((c) => c.address)).to.deep.equal([expected, expected, expected]);
  });

  describe("errors", function () {
    it("CONFIG_INVALID for a bad issuer address or no chains", async function () {
      const outFile = path.join(dir, "x.json");
      const bad = await rejection(deployAll({ chains, outFile, deployerKey: DEV_KEY, issuer: "0x1234" }));
      expect(bad.code).to.equal("CONFIG_INVALID");
      expect(bad.message).to.contain("issuer");
      const none = await rejection(deployAll({ chains: [], outFile }));
      expect(none.code).to.equal("CONFIG_INVALID");
      const delay = await rejection(deployAll({ chains, outFile, deployerKey: DEV_KEY, adminDelay: -1 }));
      expect(delay.code).to.equal("CONFIG_INVALID");
      expect(delay.message).to.contain("adminDelay");
    });

    it("DEPLOYMENTS_FILE_INVALID naming the field", async function () {
      const outFile = path.join(dir, "bad.json");
      writeFileSync(outFile, JSON.stringify({ chains: { "31337": { address: "nope" } } }));
      const error = await rejection(deployAll({ chains, outFile, deployerKey: DEV_KEY }));
      expect(error.code).to.equal("DEPLOYMENTS_FILE_INVALID");
      expect(error.message).to.contain("chains.31337.address");
    });

    it("ARTIFACT_MISSING when the contract was not built", async function () {
      const error = await rejection(
        deployAll({ chains, outFile: path.join(dir, "x.json"), artifactPath: path.join(dir, "none.json") }),
      );
      expect(error.code).to.equal("ARTIFACT_MISSING");
      expect(error.message).to.contain("npx hardhat build");
    });

    it("CHAIN_UNREACHABLE (retriable) for an endpoint nobody answers", async function () {
      const error = await rejection(
        deployAll({ chains: [{ rpcUrl: "http://127.0.0.1:9" }], outFile: path.join(dir, "x.json") }),
      );
      expect(error.code).to.equal("CHAIN_UNREACHABLE");
      expect(error.retriable).to.equal(true);
    });

    it("CONFIG_INVALID without echoing a malformed key", async function () {
      const error = await rejection(
        deployAll({ chains, outFile: path.join(dir, "x.json"), deployerKey: "0xnot-a-key-s3cr3t" }),
      );
      expect(error.code).to.equal("CONFIG_INVALID");
      expect(error.message).to.not.contain("s3cr3t");
    });
  });
});
