/**
 * The mine stage of a chain worker: polls for the receipt of any hash sent for a nonce and for its
 * confirmations, and replaces a transaction that is stuck with the same call at higher fees.
 */
import { Transaction, keccak256 } from "ethers";
import { errorFields } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import type { Receipt } from "../chain.js";
import { AppError } from "../errors.js";
import type { WorkerContext } from "./context.js";

/** A sent transaction to watch. */
export interface Pending {
  txHashes: string[];
  rawTx: string;
  /** Outbox batch to record replacements in (none for single actions). */
  batchId?: string;
}

/** A pending transaction is checked for being known to the node (not dropped) at most this often. */
const KNOWN_CHECK_MS = 1000;

/** Receipt polls back off from `receiptPollMs` up to this interval. */
const MAX_POLL_MS = 500;

/** The first receipt poll interval when `receiptPollMs` is not given. */
const RECEIPT_POLL_MS = 50;

export class ReceiptWatcher {
  constructor(private readonly ctx: WorkerContext) {}

  /**
   * Polls for a receipt of any hash sent for the nonce and for the required confirmations (no ethers
   * polling cadence). Returns undefined when no hash is mined or known to the node (dropped or never
   * arrived). A transaction still pending after `stuckAfterMs` is replaced by the same call with the
   * same nonce and fees raised by `feeBumpPercent` (at most `maxFeeBumps` times); every hash stays
   * in the outbox, since any of them may be the one mined. `RECEIPT_TIMEOUT` after `receiptTimeoutMs`.
   */
  async waitReceipt(pending: Pending): Promise<Receipt | undefined> {
    const { client, options } = this.ctx;
    const hashes = [...pending.txHashes];
    let rawTx = pending.rawTx;
    let lastSentAt = Date.now();
    let bumps = 0;
    const deadline = Date.now() + options.receiptTimeoutMs;
    const confirmations = client.config.confirmations;
    const pollMs = options.receiptPollMs ?? RECEIPT_POLL_MS;
    let interval = pollMs;
    let knownCheckedAt = 0;
    while (Date.now() < deadline && !this.ctx.stopped()) {
      // newest hash first (a replacement is the likelier one mined); several in one JSON-RPC batch
      const receipt = await client.receiptOfAny([...hashes].reverse());
      if (receipt) {
        // a mined receipt has one confirmation: the head is only read when more are required
        if (confirmations <= 1) return receipt;
        const head = Number(await client.rpc<string>("eth_blockNumber", []));
        if (head - receipt.blockNumber + 1 >= confirmations) return receipt;
      } else {
        // still pending: known to the node? (checked at most every KNOWN_CHECK_MS, not on every poll)
        if (Date.now() - knownCheckedAt >= KNOWN_CHECK_MS) {
          knownCheckedAt = Date.now();
          if (!(await client.knowsAny([...hashes].reverse()))) return undefined;
        }
        if (rawTx && Date.now() - lastSentAt >= options.stuckAfterMs && bumps < options.maxFeeBumps) {
          const bumped = await this.bumpFee(rawTx, pending.batchId);
          if (bumped) {
            rawTx = bumped.rawTx;
            hashes.push(bumped.txHash);
          }
          bumps++;
          lastSentAt = Date.now();
        }
      }
      await sleep(interval);
      // back off while nothing changes (a block takes its time), up to MAX_POLL_MS
      interval = Math.min(Math.ceil(interval * 1.5), Math.max(pollMs, MAX_POLL_MS));
    }
    throw new AppError("RECEIPT_TIMEOUT", `no receipt for ${hashes.join(", ")} yet`);
  }

  /** Re-signs `rawTx` with the same nonce and higher fees, records it, broadcasts it. */
  private async bumpFee(
    rawTx: string,
    batchId: string | undefined,
  ): Promise<{ rawTx: string; txHash: string } | undefined> {
    const { client, store, options, logger, metrics, label } = this.ctx;
    const old = Transaction.from(rawTx);
    const fee = await client.feeData(0);
    const factor = BigInt(100 + options.feeBumpPercent);
    const raise = (previous: bigint | null, current: bigint | null): bigint => {
      const bumped = ((previous ?? 0n) * factor + 99n) / 100n;
      return current !== null && current > bumped ? current : bumped;
    };
    const replacement = await client.wallet.signTransaction({
      to: old.to,
      data: old.data,
      nonce: old.nonce,
      gasLimit: old.gasLimit,
      chainId: old.chainId,
      ...(old.type === 2
        ? {
            type: 2,
            maxFeePerGas: raise(old.maxFeePerGas, fee.maxFeePerGas),
            maxPriorityFeePerGas: raise(old.maxPriorityFeePerGas, fee.maxPriorityFeePerGas),
          }
        : { type: 0, gasPrice: raise(old.gasPrice, fee.gasPrice) }),
    });
    const txHash = keccak256(replacement);
    if (batchId) store.recordReplacement(batchId, txHash, replacement);
    try {
      await client.provider.send("eth_sendRawTransaction", [replacement]);
    } catch (error) {
      // e.g. the original was mined meanwhile ("nonce too low"): the receipt poll finds it
      logger.warn({ nonce: old.nonce, err: errorFields(error) }, "fee bump not accepted");
      return undefined;
    }
    metrics.feeBumps.inc({ chain: label });
    logger.warn(
      { nonce: old.nonce, replaced: old.hash, by: txHash },
      "stuck transaction replaced with higher fees",
    );
    return { rawTx: replacement, txHash };
  }
}
