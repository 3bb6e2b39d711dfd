/**
 * Deploys the LicenseToken contract to every chain of a configuration and writes the deployments file
 * the licensing service reads:
 *
 *   { "chains": { "<chainId>": { "address", "blockNumber", "txHash", "deployer" } } }
 *
 * Idempotent: a chain whose entry in the file points at an address with code is skipped. The same
 * deployer with the same nonce gets the same address on every chain, so a license's identity is always
 * (chain id, contract address, token id).
 *
 * CLI: `npx tsx scripts/deploy.ts --help`. Programmatic: {@link deployAll}.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ContractFactory, JsonRpcProvider, Network, Wallet, getAddress, isAddress } from "ethers";
import { z } from "zod";
import { PlatformError, fieldPath } from "../common/errors.js";
import { LICENSE_ARTIFACT_PATH, readContractArtifact, type ContractArtifact } from "../server/artifact.js";
import { AppError } from "../server/errors.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Where `npx hardhat build` writes the contract's artifact (the one path the server reads too). */
export const DEFAULT_ARTIFACT = LICENSE_ARTIFACT_PATH;
/** The deployments file for the local chains. */
export const DEFAULT_DEPLOYMENTS_FILE = path.join(ROOT, "deployments/local.json");

/**
 * Hardhat's well-known development account 0 (public knowledge: it is printed by every `hardhat node`).
 * Used only for local development chains (see {@link isLocalDevChain}), never anywhere else.
 */
const DEV_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

export type DeployErrorCode =
  | "CONFIG_INVALID"
  | "ARTIFACT_MISSING"
  | "NO_DEPLOYER_KEY"
  | "CHAIN_UNREACHABLE"
  | "DEPLOY_FAILED"
  | "DEPLOYMENTS_FILE_INVALID";

/** `chains[0].rpcUrl`: a zod issue's path in the platform's one field-path style. */
function issuePath(path: readonly PropertyKey[]): string {
  return fieldPath(path.map((part) => (typeof part === "symbol" ? String(part) : part)));
}

/** A deploy failure; not retriable unless said (e.g. a chain that is not reachable yet). */
export class DeployError extends PlatformError<DeployErrorCode> {
  constructor(
    code: DeployErrorCode,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, false, options);
  }
}

const address = z.string().refine((value) => isAddress(value), "must be a 0x-prefixed 20-byte address");

export const chainTargetSchema = z.object({
  /** Only used in progress messages. */
  name: z.string().min(1).optional(),
  rpcUrl: z.string().url(),
});
export type ChainTarget = z.infer<typeof chainTargetSchema>;

/** A chains file: a list of chains, or `{ "chains": [...] }` (extra fields such as `chainId` are ignored). */
export const chainsFileSchema = z.union([
  z.array(chainTargetSchema).min(1),
  z.object({ chains: z.array(chainTargetSchema).min(1) }).transform((file) => file.chains),
]);

export const chainDeploymentSchema = z.object({
  address,
  blockNumber: z.number().int().nonnegative(),
  txHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be a 32-byte transaction hash"),
  deployer: address,
});
export type ChainDeployment = z.infer<typeof chainDeploymentSchema>;

export const deploymentsFileSchema = z.object({
  chains: z.record(z.string().regex(/^\d+$/, "chain ids must be decimal"), chainDeploymentSchema),
});
export type DeploymentsFile = z.infer<typeof deploymentsFileSchema>;

/** Default delay of a default-admin transfer (AccessControlDefaultAdminRules): 3 days, in seconds. */
export const DEFAULT_ADMIN_DELAY = 3 * 24 * 3600;

/** The constructor takes the delay as a `uint48`. */
const MAX_ADMIN_DELAY = 2 ** 48 - 1;

export interface DeployOptions {
  chains: readonly ChainTarget[];
  /** Deployments file to read and update; default {@link DEFAULT_DEPLOYMENTS_FILE}. */
  outFile?: string;
  /** Deployer key; default: `DEPLOYER_PRIVATE_KEY`, else Hardhat's dev account 0 on local dev chains only. */
  deployerKey?: string;
  /** Receives DEFAULT_ADMIN_ROLE; default: the deployer. */
  admin?: string;
  /** Receives ISSUER_ROLE (the licensing service's signer); default: nobody. */
  issuer?: string;
  /** Base of the token URIs; default: empty. */
  baseURI?: string;
  /** Seconds a default-admin transfer waits before the new admin may accept; default {@link DEFAULT_ADMIN_DELAY}. */
  adminDelay?: number;
  /** Compiled artifact; default {@link DEFAULT_ARTIFACT}. */
  artifactPath?: string;
  /** How long to wait for each deployment's receipt. */
  receiptTimeoutMs?: number;
  /** Progress lines (never contain keys); default: nothing. */
  log?: (line: string) => void;
}

export interface ChainResult {
  name: string;
  chainId: number;
  status: "deployed" | "skipped";
  deployment: ChainDeployment;
}

export interface DeployResult {
  file: string;
  deployments: DeploymentsFile;
  results: ChainResult[];
}

/**
 * True for a chain whose RPC endpoint is on this machine and whose chain id is a development id: 1337
 * or 31337–31399 (Hardhat's 31337 and the ids next to it that the project's chain launcher uses).
 */
export function isLocalDevChain(rpcUrl: string, chainId: number): boolean {
  const host = new URL(rpcUrl).hostname;
  const loopback = host === "localhost" || host === "[::1]" || host === "::1" || /^127\./.test(host);
  return loopback && (chainId === 1337 || (chainId >= 31337 && chainId <= 31399));
}

/**
 * The key to deploy with: the given one, or Hardhat's dev account 0 for a local development chain.
 * @throws DeployError `NO_DEPLOYER_KEY` for any other chain without a key.
 */
export function deployerKeyFor(rpcUrl: string, chainId: number, key: string | undefined): string {
  if (key) return key;
  if (isLocalDevChain(rpcUrl, chainId)) return DEV_ACCOUNT_0_KEY;
  throw new DeployError(
    "NO_DEPLOYER_KEY",
    `chain ${chainId} at ${rpcUrl} is not a local development chain: set DEPLOYER_PRIVATE_KEY`,
  );
}

/** The artifact as the server reads it (same file, same checks), its failure as `ARTIFACT_MISSING`. */
function readArtifact(file: string): ContractArtifact {
  try {
    return readContractArtifact(file);
  } catch (error) {
    if (error instanceof AppError && error.code === "ARTIFACT_MISSING")
      throw new DeployError("ARTIFACT_MISSING", error.message, { cause: error.cause });
    throw error;
  }
}

/** Reads the deployments file; a missing file is an empty one. */
export function readDeployments(file: string): DeploymentsFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { chains: {} };
    throw error;
  }
  const parsed = deploymentsFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DeployError(
      "DEPLOYMENTS_FILE_INVALID",
      `${file}: ${issuePath(issue?.path ?? []) || "(root)"}: ${issue?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}

function writeDeployments(file: string, deployments: DeploymentsFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const sorted: DeploymentsFile = {
    chains: Object.fromEntries(Object.entries(deployments.chains).sort(([a], [b]) => Number(a) - Number(b))),
  };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(sorted, null, 2)}\n`);
  renameSync(tmp, file);
}

function checkedDelay(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_ADMIN_DELAY)
    throw new DeployError("CONFIG_INVALID", `adminDelay: a whole number of seconds (uint48), got ${value}`);
  return value;
}

function checkedAddress(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (!isAddress(value)) throw new DeployError("CONFIG_INVALID", `${field}: not an address: ${value}`);
  return getAddress(value);
}

/** Asks the endpoint for its chain id (one request, with a timeout). */
async function fetchChainId(rpcUrl: string): Promise<number> {
  try {
    const response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { result?: string; error?: { message: string } };
    if (typeof body.result !== "string") throw new Error(body.error?.message ?? "no result");
    return Number(BigInt(body.result));
  } catch (error) {
    throw new DeployError("CHAIN_UNREACHABLE", `${rpcUrl}: eth_chainId failed: ${(error as Error).message}`, {
      retriable: true,
      cause: error,
    });
  }
}

async function deployToChain(
  target: ChainTarget,
  artifact: ContractArtifact,
  deployments: DeploymentsFile,
  options: DeployOptions,
): Promise<ChainResult> {
  const log = options.log ?? (() => {});
  const chainId = await fetchChainId(target.rpcUrl);
  const name = target.name ?? `chain ${chainId}`;
  // A static network: ethers neither probes nor retries in the background.
  const provider = new JsonRpcProvider(target.rpcUrl, Network.from(chainId), { staticNetwork: true });
  provider.pollingInterval = 200;
  try {
    const existing = deployments.chains[String(chainId)];
    if (existing && (await provider.getCode(existing.address)) !== "0x") {
      log(`${name} (${chainId}): already deployed at ${existing.address}, skipped`);
      return { name, chainId, status: "skipped", deployment: existing };
    }
    if (existing)
      log(`${name} (${chainId}): no code at ${existing.address} (chain was reset), deploying again`);

    const key = deployerKeyFor(
      target.rpcUrl,
      chainId,
      options.deployerKey ?? process.env.DEPLOYER_PRIVATE_KEY,
    );
    let wallet: Wallet;
    try {
      wallet = new Wallet(key, provider);
    } catch {
      // The message must not echo the key.
      throw new DeployError("CONFIG_INVALID", "DEPLOYER_PRIVATE_KEY: not a valid private key");
    }
    const admin = options.admin ?? wallet.address;
    const adminDelay = options.adminDelay ?? DEFAULT_ADMIN_DELAY;
    const issuer = options.issuer ?? "0x0000000000000000000000000000000000000000";
    const nonce = await provider.getTransactionCount(wallet.address, "pending");
    log(`${name} (${chainId}): deploying LicenseToken from ${wallet.address} (nonce ${nonce})`);

    const factory = new ContractFactory(artifact.abi, artifact.bytecode, wallet);
    try {
      const contract = await factory.deploy(admin, issuer, options.baseURI ?? "", adminDelay);
      const tx = contract.deploymentTransaction();
      if (!tx) throw new Error("no deployment transaction");
      const receipt = await tx.wait(1, options.receiptTimeoutMs ?? 120_000);
      if (!receipt || receipt.status !== 1 || !receipt.contractAddress) {
        throw new Error(`deployment transaction ${tx.hash} failed`);
      }
      const deployment: ChainDeployment = {
        address: getAddress(receipt.contractAddress),
        blockNumber: receipt.blockNumber,
        txHash: receipt.hash,
        deployer: wallet.address,
      };
      log(`${name} (${chainId}): deployed at ${deployment.address} in block ${deployment.blockNumber}`);
      return { name, chainId, status: "deployed", deployment };
    } catch (error) {
      throw new DeployError("DEPLOY_FAILED", `${name} (${chainId}): ${(error as Error).message}`, {
        retriable: true,
        cause: error,
      });
    }
  } finally {
    provider.destroy();
  }
}

/**
 * Deploys to every chain in turn (skipping those already deployed) and updates the deployments file
 * after each one, so an interrupted run resumes where it stopped.
 */
export async function deployAll(options: DeployOptions): Promise<DeployResult> {
  if (options.chains.length === 0)
    throw new DeployError("CONFIG_INVALID", "chains: at least one chain is needed");
  for (const [index, chain] of options.chains.entries()) {
    const parsed = chainTargetSchema.safeParse(chain);
    if (!parsed.success) {
      throw new DeployError("CONFIG_INVALID", `chains[${index}].rpcUrl: ${parsed.error.issues[0]?.message}`);
    }
  }
  const checked: DeployOptions = {
    ...options,
    admin: checkedAddress(options.admin, "admin"),
    issuer: checkedAddress(options.issuer, "issuer"),
    adminDelay: checkedDelay(options.adminDelay),
  };
  const file = path.resolve(options.outFile ?? DEFAULT_DEPLOYMENTS_FILE);
  const artifact = readArtifact(options.artifactPath ?? DEFAULT_ARTIFACT);
  const deployments = readDeployments(file);
  const results: ChainResult[] = [];
  for (const target of options.chains) {
    const result = await deployToChain(target, artifact, deployments, checked);
    results.push(result);
    if (result.status === "deployed") {
      deployments.chains[String(result.chainId)] = result.deployment;
      writeDeployments(file, deployments);
    }
  }
  const addresses = new Set(results.map((r) => r.deployment.address));
  if (addresses.size > 1) {
    options.log?.(
      `note: the contract has different addresses on different chains (${[...addresses].join(", ")}): ` +
        "the deployer's nonces differed",
    );
  }
  return { file, deployments, results };
}

const HELP = `Deploy LicenseToken to several chains and write the deployments file.

Usage: npx tsx scripts/deploy.ts (--rpc <url>... | --chains <file>) [options]

  --rpc <url>          RPC URL of a chain; repeat for several chains
  --chains <file>      JSON file: [{ "rpcUrl": "...", "name"?: "..." }] or { "chains": [...] }
  --name <name>        writes deployments/<name>.json (default: local)
  --out <file>         deployments file path (overrides --name)
  --issuer <address>   grant ISSUER_ROLE to this address (the licensing service's signer)
  --admin <address>    grant DEFAULT_ADMIN_ROLE to this address (default: the deployer)
  --base-uri <uri>     base of the token URIs (default: empty); a token's URI is <uri><chainId>/<contract>/<id>
  --admin-delay <s>    seconds before a new DEFAULT_ADMIN_ROLE holder may accept (default: 259200 = 3 days)
  --artifact <file>    compiled artifact (default: artifacts/.../LicenseToken.json; run 'npx hardhat build')
  -h, --help           this help

Environment:
  DEPLOYER_PRIVATE_KEY  the deployer's key. Without it, Hardhat's well-known dev account 0 is used, but only
                        for chains on 127.0.0.1/localhost with chain id 1337 or 31337-31399.

Chains already listed in the file with code at their address are skipped. Example:
  npx tsx scripts/deploy.ts --rpc http://127.0.0.1:8545 --rpc http://127.0.0.1:8546 --issuer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rpc: { type: "string", multiple: true },
      chains: { type: "string" },
      name: { type: "string" },
      out: { type: "string" },
      issuer: { type: "string" },
      admin: { type: "string" },
      "base-uri": { type: "string" },
      "admin-delay": { type: "string" },
      artifact: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let chains: ChainTarget[] = (values.rpc ?? []).map((rpcUrl) => ({ rpcUrl }));
  if (values.chains) {
    const parsed = chainsFileSchema.safeParse(JSON.parse(readFileSync(values.chains, "utf8")));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new DeployError(
        "CONFIG_INVALID",
        `${values.chains}: ${issuePath(issue?.path ?? [])}: ${issue?.message}`,
      );
    }
    chains = [...chains, ...parsed.data];
  }
  if (chains.length === 0) {
    process.stderr.write(`no chains given\n\n${HELP}`);
    return 2;
  }
  if (values.name !== undefined && !/^[\w.-]+$/.test(values.name)) {
    throw new DeployError("CONFIG_INVALID", `--name: use letters, digits, '.', '_' or '-': ${values.name}`);
  }
  const outFile = values.out ?? path.join(ROOT, "deployments", `${values.name ?? "local"}.json`);
  const { file, results } = await deployAll({
    chains,
    outFile,
    issuer: values.issuer,
    admin: values.admin,
    baseURI: values["base-uri"],
    adminDelay: values["admin-delay"] === undefined ? undefined : Number(values["admin-delay"]),
    artifactPath: values.artifact,
    log: (line) => process.stderr.write(`[deploy] ${line}\n`),
  });
  const deployed = results.filter((r) => r.status === "deployed").length;
  process.stderr.write(`[deploy] ${file}: ${deployed} deployed, ${results.length - deployed} skipped\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const code = error instanceof DeployError ? ` [${error.code}]` : "";
      process.stderr.write(`[deploy] error${code}: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
