/**
 * Licensing measurements straight against the chains (no service): the naive client (one contract call
 * and `wait()` per license, sequential) and pre-signed transactions pipelined to the nodes — single
 * `issue` calls (the raw chain limit) and `issueBatch` (the upper bound of a batching service).
 */
import { randomBytes } from "node:crypto";
import { Contract, Interface, Wallet, getAddress, hexlify, keccak256, toUtf8Bytes } from "ethers";
import { jsonRpc, rpcCall as rpc } from "../lib/http.js";
import { percentile } from "../lib/stats.js";
import { ACCOUNTS, devKey, providerFor, type BenchChain, type BenchChains } from "./setup.js";

export interface LicensingRun {
  licenses: number;
  seconds: number;
  licensesPerSec: number;
  /** Per-license latency (naive: call → receipt; REST: accept latency); null where not meaningful. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Licenses found on-chain afterwards (nextTokenId), to check nothing was lost. */
  onChainIssued: number;
  transactions: number;
  error?: string;
}

export type Progress = (line: string) => void;

export interface Terms {
  productId: bigint;
  expiresAt: bigint;
  seats: number;
  locked: boolean;
  termsHash: string;
  requestRef: string;
}

/** Terms of a benchmark license: perpetual, 1 seat, a unique request reference (as the service sends). */
export function licenseTerms(): Terms {
  return {
    productId: 1n,
    expiresAt: 0n,
    seats: 1,
    locked: false,
    termsHash: keccak256(toUtf8Bytes("bench-terms")),
    requestRef: hexlify(randomBytes(32)),
  };
}

/** A random address (random bytes: deriving one from a key would cost as much as a signature). */
export function randomLicensee(): string {
  return getAddress(hexlify(randomBytes(20)));
}

async function nextTokenIds(chains: readonly BenchChain[], iface: Interface): Promise<bigint[]> {
  return Promise.all(
    chains.map(async (chain) => {
      const data = iface.encodeFunctionData("nextTokenId");
      const out = await rpc<string>(chain.rpcUrl, "eth_call", [{ to: chain.address, data }, "latest"]);
      return BigInt(out);
    }),
  );
}

/** Licenses issued on all chains since `before`. */
async function issuedSince(
  chains: readonly BenchChain[],
  iface: Interface,
  before: bigint[],
): Promise<number> {
  const after = await nextTokenIds(chains, iface);
  return after.reduce((sum, id, i) => sum + Number(id - (before[i] as bigint)), 0);
}

/** Splits `total` into per-chain shares that differ by at most one. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** (a) One `issue` call and `wait()` per license, one after the other, round robin over the chains. */
export async function runNaive(
  bench: BenchChains,
  licenses: number,
  progress: Progress,
): Promise<LicensingRun> {
  const iface = new Interface(bench.artifact.abi);
  const providers = bench.chains.map(providerFor);
  const contracts = bench.chains.map(
    (chain, i) =>
      new Contract(chain.address, bench.artifact.abi, new Wallet(devKey(ACCOUNTS.naive), providers[i])),
  );
  const before = await nextTokenIds(bench.chains, iface);
  const latencies: number[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < licenses; i++) {
      const contract = contracts[i % contracts.length] as Contract;
      const t = performance.now();
      const tx = await contract.getFunction("issue")(randomLicensee(), licenseTerms());
      const receipt = await tx.wait();
      if (receipt?.status !== 1) throw new Error(`naive issue reverted: ${tx.hash}`);
      latencies.push(performance.now() - t);
    }
  } finally {
    for (const provider of providers) provider.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  progress(`    naive: ${licenses} licenses in ${seconds.toFixed(1)} s`);
  return {
    licenses,
    seconds,
    licensesPerSec: licenses / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    onChainIssued: await issuedSince(bench.chains, iface, before),
    transactions: licenses,
  };
}

interface RpcResponse {
  id: number;
  result?: string;
  error?: { message: string };
}

async function sendRawBatch(url: string, raws: readonly string[], firstId: number): Promise<RpcResponse[]> {
  const body = raws.map((raw, i) => ({
    jsonrpc: "2.0",
    id: firstId + i,
    method: "eth_sendRawTransaction",
    params: [raw],
  }));
  const parsed = await jsonRpc<RpcResponse[] | RpcResponse>(url, body);
  return Array.isArray(parsed) ? parsed : [parsed];
}

async function waitForReceipt(url: string, hash: string, timeoutMs: number): Promise<{ status: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const receipt = await rpc<{ status: string } | null>(url, "eth_getTransactionReceipt", [hash]);
    if (receipt) return receipt;
    if (Date.now() > deadline) throw new Error(`no receipt for ${hash} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface PipelineOptions {
  /** Licenses in total, spread evenly over the chains. */
  licenses: number;
  /** Licenses per transaction: 1 = `issue`, more = `issueBatch`. */
  perTx: number;
  /** Signed transactions per JSON-RPC batch request (one request in flight per chain keeps nonces in order). */
  rpcBatch: number;
}

/**
 * (b)/(c) Pre-signs every transaction with explicit nonces (untimed), then sends them to all chains at
 * once, `rpcBatch` per HTTP request, without waiting for receipts in between. Timed from the first send
 * to the receipt of each chain's last transaction; every receipt's status is checked afterwards.
 */
export async function runPipelined(
  bench: BenchChains,
  options: PipelineOptions,
  progress: Progress,
): Promise<LicensingRun> {
  const iface = new Interface(bench.artifact.abi);
  const per = shares(options.licenses, bench.chains.length);
  // 1. Chain state first (quick RPC calls), 2. then encode and sign without any network in between.
  const wallet = new Wallet(devKey(ACCOUNTS.pipelined));
  const sample = (): string =>
    options.perTx === 1
      ? iface.encodeFunctionData("issue", [randomLicensee(), licenseTerms()])
      : iface.encodeFunctionData("issueBatch", [
          Array.from({ length: options.perTx }, randomLicensee),
          Array.from({ length: options.perTx }, licenseTerms),
        ]);
  const states = [];
  for (const chain of bench.chains) {
    const nonce = Number(
      await rpc<string>(chain.rpcUrl, "eth_getTransactionCount", [wallet.address, "pending"]),
    );
    const block = await rpc<{ baseFeePerGas?: string }>(chain.rpcUrl, "eth_getBlockByNumber", [
      "latest",
      false,
    ]);
    const estimate = BigInt(
      await rpc<string>(chain.rpcUrl, "eth_estimateGas", [
        { from: wallet.address, to: chain.address, data: sample() },
      ]),
    );
    // Headroom over the estimate, within the per-transaction cap (EIP-7825).
    const padded = (estimate * 13n) / 10n;
    const gasLimit = padded > 16_777_216n ? 16_777_216n : padded;
    states.push({ chain, nonce, baseFee: BigInt(block.baseFeePerGas ?? "1000000000"), gasLimit });
  }
  const plans = [];
  for (const [index, state] of states.entries()) {
    const count = per[index] as number;
    const raws: string[] = [];
    for (let t = 0; t * options.perTx < count; t++) {
      const n = Math.min(options.perTx, count - t * options.perTx);
      const data =
        options.perTx === 1
          ? iface.encodeFunctionData("issue", [randomLicensee(), licenseTerms()])
          : iface.encodeFunctionData("issueBatch", [
              Array.from({ length: n }, randomLicensee),
              Array.from({ length: n }, licenseTerms),
            ]);
      raws.push(
        await wallet.signTransaction({
          type: 2,
          chainId: state.chain.chainId,
          nonce: state.nonce + t,
          to: state.chain.address,
          data,
          gasLimit: state.gasLimit,
          maxFeePerGas: state.baseFee * 4n + 1_000_000_000n,
          maxPriorityFeePerGas: 1_000_000_000n,
          value: 0n,
        }),
      );
    }
    plans.push({ chain: state.chain, raws });
  }
  const transactions = plans.reduce((n, p) => n + p.raws.length, 0);
  progress(
    `    pipelined: ${options.licenses} licenses in ${transactions} pre-signed transactions (${options.perTx} per tx)`,
  );
  const before = await nextTokenIds(bench.chains, iface);
  const started = performance.now();
  const hashes = await Promise.all(
    plans.map(async ({ chain, raws }) => {
      const out: string[] = [];
      for (let i = 0; i < raws.length; i += options.rpcBatch) {
        const replies = await sendRawBatch(chain.rpcUrl, raws.slice(i, i + options.rpcBatch), i);
        for (const reply of replies) {
          if (reply.error || !reply.result)
            throw new Error(`${chain.name}: ${reply.error?.message ?? "no result"}`);
          out.push(reply.result);
        }
      }
      const last = out.at(-1);
      if (last) await waitForReceipt(chain.rpcUrl, last, 120_000);
      return { chain, hashes: out };
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  // Untimed: every transaction must have succeeded.
  for (const { chain, hashes: list } of hashes) {
    for (const hash of list) {
      const receipt = await waitForReceipt(chain.rpcUrl, hash, 60_000);
      if (Number(receipt.status) !== 1) throw new Error(`${chain.name}: transaction ${hash} reverted`);
    }
  }
  const onChainIssued = await issuedSince(bench.chains, iface, before);
  progress(`    pipelined: ${onChainIssued} licenses confirmed in ${seconds.toFixed(2)} s`);
  return {
    licenses: options.licenses,
    seconds,
    licensesPerSec: onChainIssued / seconds,
    p50Ms: null,
    p99Ms: null,
    onChainIssued,
    transactions,
  };
}
