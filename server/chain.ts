/**
 * One chain as the service sees it: provider, signer, license contract, and a health probe.
 * Providers are built with `cacheTimeout: -1`: ethers v6 otherwise caches identical calls for 250 ms
 * (e.g. two `eth_getTransactionCount` in a row), which made back-to-back sends reuse a nonce.
 */
import http from "node:http";
import https from "node:https";
import {
  Contract,
  FeeData,
  JsonRpcProvider,
  Network,
  Wallet,
  type JsonRpcPayload,
  type JsonRpcResult,
} from "ethers";
import type { ResolvedChain } from "./config.js";
import { LICENSE_ABI } from "./contract.js";
import { RpcError, rpcError, rpcFailure, withTimeout, type RpcAnswer } from "./rpc-errors.js";
import { errorText } from "../common/log.js";

export { LICENSE_ABI, LICENSE_INTERFACE } from "./contract.js";
export { loadSignerKey } from "./signer.js";
export { RpcError, rpcFailure, withTimeout } from "./rpc-errors.js";

export interface ChainHealth {
  healthy: boolean;
  lastCheckedAt?: number;
  headBlock?: number;
  latencyMs?: number;
  signerBalanceWei?: bigint;
  feePerGasWei?: bigint;
  error?: string;
}

/** The fields of a transaction receipt the issue pipeline reads. */
export interface Receipt {
  hash: string;
  status: number;
  blockNumber: number;
  logs: { address: string; topics: readonly string[]; data: string }[];
}

/**
 * The provider of a chain client: ethers' JSON-RPC provider that reports each method it sends (for the
 * `license_rpc_requests_total` metric).
 */
class CountingProvider extends JsonRpcProvider {
  onRequest: ((method: string) => void) | undefined;

  override _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    if (this.onRequest)
      for (const p of Array.isArray(payload) ? payload : [payload]) this.onRequest(p.method);
    return super._send(payload);
  }
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
    const provider = new CountingProvider(config.rpcUrl, network, {
      staticNetwork: network,
      cacheTimeout: -1,
      batchMaxCount: 1,
    });
    provider.onRequest = (method) => this.onRpc?.(method);
    this.provider = provider;
    this.wallet = new Wallet(privateKey, this.provider);
    this.contract = new Contract(config.contract, LICENSE_ABI, this.provider);
    this.rpcTarget = new URL(config.rpcUrl);
    this.agent = new (this.rpcTarget.protocol === "https:" ? https : http).Agent({ keepAlive: true });
  }

  private readonly rpcTarget: URL;

  /** Called with the method of every JSON-RPC request this client sends (its own and the provider's). */
  onRpc: ((method: string) => void) | undefined;

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
  async rpc<T>(method: string, params: unknown[], timeoutMs = 120_000): Promise<T> {
    this.onRpc?.(method);
    const parsed = (await this.post(
      JSON.stringify({ jsonrpc: "2.0", id: ++this.rpcId, method, params }),
      method,
      timeoutMs,
    )) as RpcAnswer;
    if (parsed.error) throw rpcError(method, parsed.error);
    return parsed.result as T;
  }

  /**
   * Several calls in one JSON-RPC batch request (one HTTP round trip); each answer is the call's result
   * or its `RpcError`, in the order of `calls`. Rejects only when the request as a whole failed.
   */
  async rpcBatch(
    calls: readonly { method: string; params: unknown[] }[],
    timeoutMs = 120_000,
  ): Promise<unknown[]> {
    if (calls.length === 0) return [];
    const first = this.rpcId + 1;
    this.rpcId += calls.length;
    for (const call of calls) this.onRpc?.(call.method);
    const what = calls.map((c) => c.method).join(",");
    const body = JSON.stringify(
      calls.map((call, i) => ({ jsonrpc: "2.0", id: first + i, method: call.method, params: call.params })),
    );
    const parsed = await this.post(body, what, timeoutMs);
    // a node that refuses batches answers with one error object
    if (!Array.isArray(parsed))
      throw rpcError(what, (parsed as RpcAnswer).error ?? { message: "no batch answer" });
    const byId = new Map((parsed as (RpcAnswer & { id: number })[]).map((answer) => [answer.id, answer]));
    return calls.map((call, i) => {
      const answer = byId.get(first + i);
      if (!answer) return new RpcError(call.method, "no answer in the batch");
      return answer.error ? rpcError(call.method, answer.error) : answer.result;
    });
  }

  /** POSTs a JSON-RPC body and parses the answer (`what` names the call(s) in errors). */
  private post(body: string, what: string, timeoutMs: number): Promise<unknown> {
    const url = this.rpcTarget;
    return new Promise<unknown>((resolve, reject) => {
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
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(rpcFailure(`${what}: HTTP ${response.statusCode} ${text.slice(0, 200)}`));
            }
          });
        },
      );
      request.on("timeout", () => request.destroy(rpcFailure(`${what}: timed out after ${timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }

  private fee: { data: FeeData; head: number; at: number } | undefined;
  private feeInFlight: Promise<{ data: FeeData; head: number; at: number }> | undefined;

  /**
   * Fee data as ethers' `getFeeData` computes it (latest block's base fee × 2 + priority fee, or the
   * gas price), reused while younger than `maxAgeMs` (0 = always fresh): the health probe and the
   * worker share it, and its three calls go in one JSON-RPC batch.
   */
  async feeData(maxAgeMs: number, timeoutMs = 120_000): Promise<FeeData> {
    return (await this.feeAndHead(maxAgeMs, timeoutMs)).data;
  }

  private async feeAndHead(
    maxAgeMs: number,
    timeoutMs: number,
    extra: readonly { method: string; params: unknown[] }[] = [],
  ): Promise<{ data: FeeData; head: number; at: number; extra: unknown[] }> {
    const cached = this.fee;
    if (extra.length === 0 && cached && maxAgeMs > 0 && Date.now() - cached.at < maxAgeMs)
      return { ...cached, extra: [] };
    if (extra.length === 0 && maxAgeMs > 0 && this.feeInFlight)
      return { ...(await this.feeInFlight), extra: [] };
    const fetching = (async () => {
      const answers = await this.rpcBatch(
        [
          { method: "eth_getBlockByNumber", params: ["latest", false] },
          { method: "eth_gasPrice", params: [] },
          { method: "eth_maxPriorityFeePerGas", params: [] },
          ...extra,
        ],
        timeoutMs,
      );
      const block = answers[0];
      if (block instanceof Error) throw block;
      if (!block || typeof block !== "object") throw rpcFailure("no latest block");
      const { number, baseFeePerGas } = block as { number: string; baseFeePerGas?: string | null };
      const big = (value: unknown): bigint | null =>
        typeof value === "string" && value.startsWith("0x") ? BigInt(value) : null;
      const gasPrice = big(answers[1]);
      const priority = big(answers[2]);
      const baseFee = big(baseFeePerGas);
      // ethers' EIP-1559 heuristics (AbstractProvider.getFeeData)
      const maxPriorityFeePerGas = baseFee ? (priority ?? 1_000_000_000n) : null;
      const maxFeePerGas = baseFee ? baseFee * 2n + maxPriorityFeePerGas! : null;
      const fee = {
        data: new FeeData(gasPrice, maxFeePerGas, maxPriorityFeePerGas),
        head: Number(number),
        at: Date.now(),
      };
      this.fee = fee;
      return { ...fee, extra: answers.slice(3) };
    })();
    if (extra.length > 0) return fetching;
    this.feeInFlight = fetching;
    try {
      return await fetching;
    } finally {
      if (this.feeInFlight === fetching) this.feeInFlight = undefined;
    }
  }

  /** The receipt of `hash`, or null while it is not mined. */
  async receipt(hash: string): Promise<Receipt | null> {
    return toReceipt(await this.rpc<RawReceipt | null>("eth_getTransactionReceipt", [hash]));
  }

  /** The first receipt found among `hashes` (in that order; one JSON-RPC batch), or null. */
  async receiptOfAny(hashes: readonly string[]): Promise<Receipt | null> {
    if (hashes.length === 1) return this.receipt(hashes[0]!);
    const answers = await this.rpcBatch(
      hashes.map((hash) => ({ method: "eth_getTransactionReceipt", params: [hash] })),
    );
    for (const answer of answers) {
      if (answer instanceof Error) throw answer;
      if (answer) return toReceipt(answer as RawReceipt);
    }
    return null;
  }

  /** True when the node knows (pending or mined) any of `hashes` (one JSON-RPC batch). */
  async knowsAny(hashes: readonly string[]): Promise<boolean> {
    const answers = await this.rpcBatch(
      hashes.map((hash) => ({ method: "eth_getTransactionByHash", params: [hash] })),
    );
    for (const answer of answers) {
      if (answer instanceof Error) throw answer;
      if (answer) return true;
    }
    return false;
  }

  /** When chain id and contract code were last verified (see `probe`). */
  private verified: { at: number } | undefined;

  /**
   * Probes the chain in one JSON-RPC batch request: head block and fee (shared with the worker's fee
   * data), signer balance, and — on the first probe, while the chain is not healthy, when the head went
   * backwards (a restarted node) and at least every `VERIFY_EVERY_MS` — chain id and contract code.
   */
  async probe(timeoutMs: number, failuresToDown: number): Promise<ChainHealth> {
    const started = Date.now();
    try {
      const verifyCalls = [
        { method: "eth_chainId", params: [] },
        // straight JSON-RPC: ethers hexlifies the whole bytecode and decodes the body per character
        { method: "eth_getCode", params: [this.config.contract, "latest"] },
      ];
      const checkVerified = (answers: readonly unknown[]): void => {
        const chainId = Number(answers[0] as string);
        if (chainId !== this.chainId) throw rpcFailure(`chain id ${chainId} != ${this.chainId}`);
        if (answers[1] === "0x") throw rpcFailure(`no contract at ${this.config.contract}`);
      };
      let verify =
        !this.health.healthy || this.verified === undefined || started - this.verified.at >= VERIFY_EVERY_MS;
      const result = await withTimeout(
        (async () => {
          const {
            data: fee,
            head,
            extra,
          } = await this.feeAndHead(0, timeoutMs, [
            { method: "eth_getBalance", params: [this.wallet.address, "latest"] },
            ...(verify ? verifyCalls : []),
          ]);
          for (const answer of extra) if (answer instanceof Error) throw answer;
          const balance = BigInt(extra[0] as string);
          if (verify) checkVerified(extra.slice(1));
          else if (head < (this.health.headBlock ?? 0)) {
            // the head went backwards: perhaps a restarted node, without the contract
            verify = true;
            const answers = await this.rpcBatch(verifyCalls, timeoutMs);
            for (const answer of answers) if (answer instanceof Error) throw answer;
            checkVerified(answers);
          }
          if (balance === 0n) throw rpcFailure("signer has no funds");
          return { head, balance, fee: fee.maxFeePerGas ?? fee.gasPrice ?? undefined };
        })(),
        timeoutMs,
      );
      if (verify) this.verified = { at: started };
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
      this.verified = undefined;
      const down = this.consecutiveFailures >= failuresToDown;
      this.health = {
        ...this.health,
        healthy: this.health.healthy && !down,
        lastCheckedAt: Date.now(),
        error: errorText(error).slice(0, 200),
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

/** Chain id and contract code are verified by the health probe at least this often (see `probe`). */
export const VERIFY_EVERY_MS = 10_000;

interface RawReceipt {
  transactionHash: string;
  status: string;
  blockNumber: string;
  logs: { address: string; topics: string[]; data: string }[];
}

function toReceipt(raw: RawReceipt | null): Receipt | null {
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
