/**
 * One chain as the service sees it: provider, signer, license contract, and a health probe.
 * Providers are built with `cacheTimeout: -1`: ethers v6 otherwise caches identical calls for 250 ms
 * (e.g. two `eth_getTransactionCount` in a row), which made back-to-back sends reuse a nonce.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Contract, Interface, JsonRpcProvider, Network, Wallet } from "ethers";
import type { ResolvedChain } from "./config.js";
import { AppError } from "./errors.js";

export const LICENSE_ABI = [
  "function issueBatch(address[] licensees, tuple(uint64 productId, uint64 expiresAt, uint32 seats, bool locked, bytes32 termsHash, bytes32 requestRef)[] terms) returns (uint256)",
  "function revoke(uint256 tokenId, bytes32 reason)",
  "function renewSubscription(uint256 tokenId, uint64 duration) payable",
  "function license(uint256 tokenId) view returns (tuple(uint64 productId, uint64 issuedAt, uint64 expiresAt, uint32 seats, bool locked, bool revoked, bytes32 termsHash))",
  "function isValid(uint256 tokenId) view returns (bool)",
  "function ownerOf(uint256 tokenId) view returns (address)",
  "function tokenOfRequest(bytes32 requestRef) view returns (uint256)",
  "function nextTokenId() view returns (uint256)",
  "event LicenseIssued(uint256 indexed tokenId, address indexed licensee, bytes32 indexed requestRef, uint64 productId, uint64 expiresAt)",
  "error LicenseEmptyBatch()",
  "error LicenseBatchLengthMismatch(uint256 licensees, uint256 terms)",
  "error LicenseEmptyTermsHash(uint256 tokenId)",
  "error LicenseInvalidExpiry(uint256 tokenId, uint64 expiresAt, uint256 currentTime)",
  "error LicenseDuplicateRequest(bytes32 requestRef, uint256 tokenId)",
  "error LicenseIsRevoked(uint256 tokenId)",
  "error LicensePerpetual(uint256 tokenId)",
  "error LicenseInvalidDuration(uint64 duration)",
  "error LicenseExpiryOverflow(uint256 tokenId, uint256 expiresAt)",
  "error ERC721NonexistentToken(uint256 tokenId)",
  "error ERC721InvalidReceiver(address receiver)",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
];

export const LICENSE_INTERFACE = new Interface(LICENSE_ABI);

export interface ChainHealth {
  healthy: boolean;
  lastCheckedAt?: number;
  headBlock?: number;
  latencyMs?: number;
  signerBalanceWei?: bigint;
  feePerGasWei?: bigint;
  error?: string;
}

/** The signer key from the environment or a keystore file; never logged. */
export async function loadSignerKey(chain: ResolvedChain, env: NodeJS.ProcessEnv): Promise<string> {
  if (!chain.signer)
    throw new AppError("CONFIG_INVALID", `chain ${chain.name} has no signer`, { field: "signer" });
  if ("env" in chain.signer) {
    const key = env[chain.signer.env];
    if (!key)
      throw new AppError("CONFIG_INVALID", `environment variable ${chain.signer.env} is not set`, {
        field: "signer.env",
      });
    return key;
  }
  const password = env[chain.signer.passwordEnv];
  if (password === undefined) {
    throw new AppError("CONFIG_INVALID", `environment variable ${chain.signer.passwordEnv} is not set`, {
      field: "signer.passwordEnv",
    });
  }
  const wallet = await Wallet.fromEncryptedJson(readFileSync(chain.signer.keystore, "utf8"), password);
  return wallet.privateKey;
}

/** A JSON-RPC error answer of the node (message as the node wrote it, e.g. "nonce too low"). */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    message: string,
    readonly rpcCode?: number,
    readonly data?: unknown,
  ) {
    super(`${method}: ${message}`);
    this.name = "RpcError";
  }
}

/** The fields of a transaction receipt the issue pipeline reads. */
export interface Receipt {
  hash: string;
  status: number;
  blockNumber: number;
  logs: { address: string; topics: readonly string[]; data: string }[];
}

export class ChainClient {
  readonly provider: JsonRpcProvider;
  readonly wallet: Wallet;
  readonly contract: Contract;
  health: ChainHealth = { healthy: false };
  private consecutiveFailures = 0;

  constructor(
    readonly config: ResolvedChain,
    privateKey: string,
  ) {
    const network = Network.from(config.chainId);
    this.provider = new JsonRpcProvider(config.rpcUrl, network, {
      staticNetwork: network,
      cacheTimeout: -1,
      batchMaxCount: 1,
    });
    this.wallet = new Wallet(privateKey, this.provider);
    this.contract = new Contract(config.contract, LICENSE_ABI, this.provider);
    this.rpcTarget = new URL(config.rpcUrl);
    this.agent = new (this.rpcTarget.protocol === "https:" ? https : http).Agent({ keepAlive: true });
  }

  private readonly rpcTarget: URL;

  get chainId(): number {
    return this.config.chainId;
  }

  private rpcId = 0;

  /** Keep-alive connections of `rpc` to this chain's node. */
  private readonly agent: http.Agent;

  /**
   * One JSON-RPC call straight over `node:http` (keep-alive), for the worker's hot path: ethers' provider
   * converts request and response bodies through its own UTF-8 codec and formats every log of a
   * receipt, which for a batch of 100 licenses cost more CPU than the call itself; `fetch` (undici, web
   * streams) cost about twice the CPU of a plain request per call.
   */
  rpc<T>(method: string, params: unknown[], timeoutMs = 120_000): Promise<T> {
    const body = JSON.stringify({ jsonrpc: "2.0", id: ++this.rpcId, method, params });
    const url = this.rpcTarget;
    return new Promise<T>((resolve, reject) => {
      const request = (url.protocol === "https:" ? https : http).request(
        url,
        {
          method: "POST",
          agent: this.agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
          timeout: timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: { result?: T; error?: { code?: number; message?: string; data?: unknown } };
            try {
              parsed = JSON.parse(text) as typeof parsed;
            } catch {
              reject(new Error(`${method}: HTTP ${response.statusCode} ${text.slice(0, 200)}`));
              return;
            }
            if (parsed.error) {
              reject(
                new RpcError(method, parsed.error.message ?? "error", parsed.error.code, parsed.error.data),
              );
            } else resolve(parsed.result as T);
          });
        },
      );
      request.on("timeout", () => request.destroy(new Error(`${method}: timed out after ${timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }

  /** The receipt of `hash`, or null while it is not mined. */
  async receipt(hash: string): Promise<Receipt | null> {
    const raw = await this.rpc<{
      transactionHash: string;
      status: string;
      blockNumber: string;
      logs: { address: string; topics: string[]; data: string }[];
    } | null>("eth_getTransactionReceipt", [hash]);
    if (!raw) return null;
    return {
      hash: raw.transactionHash,
      status: Number(raw.status),
      blockNumber: Number(raw.blockNumber),
      logs: raw.logs.map((l) => ({
        address: l.address,
        topics: l.topics.map((t) => t.toLowerCase()),
        data: l.data,
      })),
    };
  }

  /** Probes the chain: chain id, head block, contract code, signer balance and fee. */
  async probe(timeoutMs: number, failuresToDown: number): Promise<ChainHealth> {
    const started = Date.now();
    try {
      const result = await withTimeout(
        (async () => {
          const [chainIdHex, head, code, balance, fee] = await Promise.all([
            this.provider.send("eth_chainId", []) as Promise<string>,
            this.provider.getBlockNumber(),
            // straight JSON-RPC: ethers hexlifies the whole bytecode and decodes the body per character
            this.rpc<string>("eth_getCode", [this.config.contract, "latest"], timeoutMs),
            this.provider.getBalance(this.wallet.address),
            this.provider.getFeeData(),
          ]);
          if (Number(chainIdHex) !== this.chainId)
            throw new Error(`chain id ${Number(chainIdHex)} != ${this.chainId}`);
          if (code === "0x") throw new Error(`no contract at ${this.config.contract}`);
          if (balance === 0n) throw new Error("signer has no funds");
          return { head, balance, fee: fee.maxFeePerGas ?? fee.gasPrice ?? undefined };
        })(),
        timeoutMs,
      );
      this.consecutiveFailures = 0;
      this.health = {
        healthy: true,
        lastCheckedAt: Date.now(),
        headBlock: result.head,
        latencyMs: Date.now() - started,
        signerBalanceWei: result.balance,
        ...(result.fee === undefined ? {} : { feePerGasWei: result.fee }),
      };
    } catch (error) {
      this.consecutiveFailures++;
      const down = this.consecutiveFailures >= failuresToDown;
      this.health = {
        ...this.health,
        healthy: this.health.healthy && !down,
        lastCheckedAt: Date.now(),
        error: error instanceof Error ? error.message.slice(0, 200) : String(error),
      };
    }
    return this.health;
  }

  /** Marks the chain down at once (a send found it unreachable). */
  markDown(reason: string): void {
    this.consecutiveFailures++;
    this.health = { ...this.health, healthy: false, lastCheckedAt: Date.now(), error: reason };
  }

  destroy(): void {
    this.provider.destroy();
    this.agent.destroy();
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
