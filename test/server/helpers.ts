/**
 * Helpers for the licensing-service integration tests: dev accounts, a fresh LicenseToken per test
 * file, and a service wired to real chains. Accounts 10-14 of the hardhat dev mnemonic are used only
 * by the server tests (each test file its own), so nonces never collide with other test files.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import {
  ContractFactory,
  HDNodeWallet,
  JsonRpcProvider,
  Wallet,
  getAddress,
  hexlify,
  randomBytes,
  type Contract,
} from "ethers";
import pino from "pino";
import {
  parseConfig,
  sha256Hex,
  type Config,
  type PolicyName,
  type ResolvedChain,
} from "../../server/config.js";
import { buildRuntime, type Runtime } from "../../server/index.js";
import { readContractArtifact } from "../../server/artifact.js";
import { DEFAULT_ADMIN_DELAY } from "../../scripts/deploy.js";
import { ROOT } from "../support/procs.js";
import { getChains } from "../fixtures/infra.js";

export const MNEMONIC = "test test test test test test test test test test test junk";

export function devKey(index: number): string {
  return HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).privateKey;
}

/** A random licensee address. */
export function randomAddress(): string {
  return getAddress(hexlify(randomBytes(20)));
}

export function provider(rpcUrl: string): JsonRpcProvider {
  return new JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
}

/** Deploys a fresh LicenseToken with `key` as admin and issuer; returns its address. */
export async function deployLicenseToken(
  rpcUrl: string,
  key: string,
): Promise<{ address: string; blockNumber: number }> {
  const artifact = readContractArtifact();
  const p = provider(rpcUrl);
  try {
    const wallet = new Wallet(key, p);
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, wallet);
    const nonce = await p.getTransactionCount(wallet.address, "pending");
    const contract = (await factory.deploy(wallet.address, wallet.address, "", DEFAULT_ADMIN_DELAY, {
      nonce,
    })) as Contract;
    const receipt = await contract.deploymentTransaction()!.wait();
    return { address: await contract.getAddress(), blockNumber: receipt!.blockNumber };
  } finally {
    p.destroy();
  }
}

/** Deploys a fresh LicenseToken (admin and issuer `key`) on each chain, in order; the chains as the tests use them. */
export async function deployOnChains(
  chains: readonly { name: string; chainId: number; rpcUrl: string }[],
  key: string,
): Promise<TestChain[]> {
  const deployed: TestChain[] = [];
  for (const c of chains) {
    const { address } = await deployLicenseToken(c.rpcUrl, key);
    deployed.push({ name: c.name, chainId: c.chainId, rpcUrl: c.rpcUrl, contract: address });
  }
  return deployed;
}

export const KEYS = {
  admin: "admin-key-0123456789",
  client: "client-key-0123456789",
  other: "other-client-key-0123456789",
  reader: "reader-key-0123456789",
};

export interface TestChain {
  name: string;
  chainId: number;
  rpcUrl: string;
  contract: string;
  weight?: number;
  maxTxGas?: number;
}

export function testConfig(
  chains: TestChain[],
  options: {
    policy?: PolicyName;
    dbPath: string;
    batching?: { maxSize: number; maxWaitMs: number };
    rateLimit?: { perSecond: number; burst: number };
    transactions?: Record<string, number>;
    bulk?: { maxItems: number; bodyLimitBytes: number };
  },
): Config {
  return parseConfig({
    database: { path: options.dbPath },
    server: {
      bodyLimitBytes: 4096,
      rateLimit: options.rateLimit ?? { perSecond: 10_000, burst: 10_000 },
      ...(options.bulk ? { bulk: options.bulk } : {}),
    },
    chains: chains.map((c) => ({
      name: c.name,
      chainId: c.chainId,
      rpcUrl: c.rpcUrl,
      contract: c.contract,
      signer: { env: `SIGNER_KEY_${c.chainId}` },
      weight: c.weight ?? 1,
      ...(c.maxTxGas ? { maxTxGas: c.maxTxGas } : {}),
    })),
    products: [
      { id: 1, name: "Pro", defaultDurationSeconds: 0 },
      { id: 2, name: "Pinned", chains: [chains.at(-1)!.chainId] },
    ],
    policy: options.policy ?? "round-robin",
    batching: options.batching ?? { maxSize: 50, maxWaitMs: 20 },
    ...(options.transactions ? { transactions: options.transactions } : {}),
    health: { intervalMs: 300, timeoutMs: 2000, failuresToDown: 1 },
    apiKeys: [
      { id: "admin", sha256: sha256Hex(KEYS.admin), scopes: ["admin"] },
      { id: "client", sha256: sha256Hex(KEYS.client), scopes: ["licenses:write", "licenses:read"] },
      { id: "other", sha256: sha256Hex(KEYS.other), scopes: ["licenses:write", "licenses:read"] },
      { id: "reader", sha256: sha256Hex(KEYS.reader), scopes: ["licenses:read"] },
    ],
  });
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), "license-server-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startRuntime(config: Config, key: string): Promise<Runtime> {
  const env: NodeJS.ProcessEnv = {};
  for (const chain of config.chains) env[`SIGNER_KEY_${chain.chainId}`] = key;
  return buildRuntime(config, config.chains as ResolvedChain[], {
    env,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  });
}

/** The `Authorization` header of an API key, as supertest's `.set(...auth(key))` takes it. */
export const auth = (key: string): [string, string] => ["Authorization", `Bearer ${key}`];

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts tokens minted by `contract` (nextTokenId - 1). */
export async function mintedCount(rpcUrl: string, contract: string): Promise<number> {
  const p = provider(rpcUrl);
  try {
    const data = "0x75794a3c"; // nextTokenId()
    const result = await p.call({ to: contract, data });
    return Number(BigInt(result)) - 1;
  } finally {
    p.destroy();
  }
}

export interface Started {
  child: ChildProcessWithoutNullStreams;
  base: string;
  /** Log messages (pino JSON lines) seen on stdout. */
  logs: string[];
}

/** A service configuration for {@link startServer}: fresh contracts on the shared chains, in a temp dir. */
export interface ChildServiceSetup {
  tmp: ReturnType<typeof tempDir>;
  chains: TestChain[];
  configFile: string;
}

/**
 * Deploys fresh contracts with `signer` on the three shared chains and writes `deployments.json` and a
 * `config.json` (SQLite in the temp dir, the signer read from env `signerEnv`, small batches, fast health
 * probes) for a service run as its own process; `extra` is merged into the config (products, apiKeys…).
 */
export async function childServiceSetup(
  signer: string,
  signerEnv: string,
  extra: Record<string, unknown>,
): Promise<ChildServiceSetup> {
  const set = await getChains();
  const tmp = tempDir();
  const chains: TestChain[] = [];
  const deployments: Record<string, unknown> = {};
  for (const c of set.chains) {
    const { address, blockNumber } = await deployLicenseToken(c.rpcUrl, signer);
    chains.push({ name: c.name, chainId: c.chainId, rpcUrl: c.rpcUrl, contract: address });
    deployments[String(c.chainId)] = { address, blockNumber, txHash: "0x", deployer: "test" };
  }
  writeFileSync(path.join(tmp.dir, "deployments.json"), JSON.stringify({ chains: deployments }));
  const configFile = path.join(tmp.dir, "config.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      database: { path: path.join(tmp.dir, "licenses.sqlite") },
      deploymentsFile: "deployments.json",
      chains: chains.map((c) => ({
        name: c.name,
        chainId: c.chainId,
        rpcUrl: c.rpcUrl,
        signer: { env: signerEnv },
      })),
      batching: { maxSize: 10, maxWaitMs: 30 },
      health: { intervalMs: 500 },
      ...extra,
    }),
  );
  return { tmp, chains, configFile };
}

/**
 * Starts `server/main.ts` as its own process (with `nodeArgs` before the script, e.g. another
 * `--import`); resolves once it printed its ready line.
 */
export function startServer(
  configFile: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): Promise<Started> {
  const args = ["--import", "tsx", ...nodeArgs, "server/main.ts", "--config", configFile];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: "info" },
  });
  const logs: string[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready\n${stderr}`)), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}\n${stderr}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const parsed = JSON.parse(line) as { ready?: boolean; port?: number; msg?: string; batches?: number };
        if (parsed.msg === "outbox reconciled") logs.push(`${parsed.msg}: ${parsed.batches}`);
        if (parsed.ready) {
          clearTimeout(timer);
          resolve({ child, base: `http://127.0.0.1:${parsed.port}`, logs });
        }
      } catch {
        // a log line
      }
    });
  });
}
