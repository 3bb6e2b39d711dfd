/**
 * The send stage of a chain worker: signs with the signer's next nonce (allocated locally), records
 * the signed transaction in the outbox before broadcasting it, broadcasts, and commits or gives up the
 * nonce by the node's answer.
 */
import { randomUUID } from "node:crypto";
import type { FeeData } from "ethers";
import { errorFields, errorText } from "../../common/log.js";
import { NonceManager, isConnectionError, isNonceError, matchesError } from "../nonce.js";
import { signTx } from "../txcodec.js";
import { gasLimitFor, type WorkerContext } from "./context.js";

export interface Sent {
  batchId: string;
  txHash: string;
  rawTx: string;
  nonce: number;
}

export class TxSender {
  readonly nonces: NonceManager;

  constructor(private readonly ctx: WorkerContext) {
    const { client } = ctx;
    this.nonces = new NonceManager(() =>
      client.provider.getTransactionCount(client.wallet.address, "pending"),
    );
  }

  /**
   * Signs with the next nonce, records (via `record`) before broadcasting, broadcasts. Returns undefined
   * when the transaction certainly did not reach the node (a recorded batch is then settled `dropped`).
   */
  async signAndSend(
    data: string | Buffer,
    gas: bigint,
    record?: (batchId: string, nonce: number, txHash: string, rawTx: string) => void,
  ): Promise<Sent | undefined> {
    const { client, logger, metrics, label, store } = this.ctx;
    const nonce = await this.nonces.peek();
    const fee = await this.feeData();
    const { rawTx, txHash } = signTx(
      {
        chainId: client.chainId,
        nonce,
        gasLimit: gasLimitFor(gas),
        to: client.config.contract,
        data: typeof data === "string" ? Buffer.from(data.slice(2), "hex") : data,
        fee:
          fee.maxFeePerGas !== null && fee.maxPriorityFeePerGas !== null
            ? { maxFeePerGas: fee.maxFeePerGas, maxPriorityFeePerGas: fee.maxPriorityFeePerGas }
            : { gasPrice: fee.gasPrice ?? 0n },
      },
      client.wallet.signingKey,
    );
    const batchId = randomUUID();
    record?.(batchId, nonce, txHash, rawTx);
    try {
      await client.rpc("eth_sendRawTransaction", [rawTx]);
    } catch (error) {
      if (matchesError(error, /already known/i)) {
        // the node has it: same as sent
      } else if (isNonceError(error) || isConnectionError(error)) {
        metrics.txErrors.inc({ chain: label, kind: isNonceError(error) ? "nonce" : "connection" });
        logger.warn({ nonce, err: errorFields(error) }, "send failed, not sent");
        this.nonces.resync();
        if (record) store.settleBatch(batchId, new Map(), "dropped");
        if (isConnectionError(error)) client.markDown(errorText(error).slice(0, 200));
        return undefined;
      } else {
        // Unknown outcome: keep the outbox entry; reconcile decides from the chain.
        this.nonces.resync();
        throw error;
      }
    }
    this.nonces.commit(nonce);
    return { batchId, txHash, rawTx, nonce };
  }

  /** Gas of a call from the signer to the contract (`eth_estimateGas`: the node executes it). */
  estimateGas(data: string): Promise<bigint> {
    const { client } = this.ctx;
    return client.provider.estimateGas({ from: client.wallet.address, to: client.config.contract, data });
  }

  /**
   * Fee data, reused for `feeCacheMs` (shared with the health probe, which refreshes it; a fee bump
   * always fetches fresh data).
   */
  private feeData(): Promise<FeeData> {
    return this.ctx.client.feeData(this.ctx.options.feeCacheMs);
  }
}
