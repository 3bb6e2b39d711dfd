/**
 * The batching stage of a chain worker: sizes a batch by gas (estimated, or learned per license),
 * sends it through the sender with the outbox entry written first, and tracks each batch in flight
 * (receipt → settle) on its own, so the next batch goes out while earlier ones are being mined.
 */
import { errorFields } from "../../common/log.js";
import type { BatchRecord, LicenseRecord } from "../domain.js";
import { isConnectionError } from "../nonce.js";
import { encodeIssueBatch } from "../txcodec.js";
import { gasLimitFor, type WorkerContext } from "./context.js";
import type { ReceiptWatcher } from "./receipts.js";
import type { Reconciler } from "./reconciler.js";
import type { TxSender } from "./sender.js";

/** Fixed gas of a batch transaction on top of its licenses' share (learned gas per license). */
const BATCH_BASE_GAS = 30_000n;

export class BatchIssuer {
  /** Current batch size limit: lowered when a batch needs more gas than a transaction may use. */
  private batchLimit: number;
  /** Trackers of the batches in flight (receipt → settle), by batch id. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Gas per license from the last estimate (`gasEstimate: learned`); undefined = estimate the next batch. */
  private gasPerLicense: bigint | undefined;
  /** Size of the batch `gasPerLicense` was learned from; larger batches are estimated again. */
  private gasLearnedFrom = 0;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly sender: TxSender,
    private readonly receipts: ReceiptWatcher,
    private readonly reconciler: Reconciler,
    private readonly events: {
      /** A tracker finished (the loop may send the next batch). */
      trackerDone(): void;
      /** A batch was not mined with success: the outbox must be reconciled before more are sent. */
      needsReconcile(): void;
    },
  ) {
    this.batchLimit = ctx.options.maxSize;
  }

  /** The size of the next batch. */
  get size(): number {
    return Math.min(this.ctx.options.maxSize, this.batchLimit);
  }

  /** Every batch allowed in flight is in flight. */
  get full(): boolean {
    return this.inFlight.size >= Math.max(1, this.ctx.options.inFlight);
  }

  /** Waits until no batch is in flight. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()]);
  }

  async issue(batch: LicenseRecord[]): Promise<void> {
    const { client, options, logger, metrics, label, store } = this.ctx;
    const calldata = encodeIssueBatch(batch);
    const data = `0x${calldata.toString("hex")}`;
    let gas: bigint;
    if (
      options.gasEstimate === "learned" &&
      this.gasPerLicense !== undefined &&
      batch.length <= this.gasLearnedFrom
    ) {
      // an estimate executes the whole batch on the node: learned from the largest batch estimated so
      // far, then scaled to the batch size (plus the fixed part of a transaction)
      gas = this.gasPerLicense * BigInt(batch.length) + BATCH_BASE_GAS;
    } else {
      try {
        gas = await this.sender.estimateGas(data);
      } catch (error) {
        if (isConnectionError(error)) throw error;
        logger.warn({ size: batch.length, err: errorFields(error) }, "batch would revert");
        const settled = await this.reconciler.isolate(batch);
        if (settled === 0 && batch.length > 1) {
          // every license passes alone: the batch as a whole is too big (e.g. the block gas limit)
          this.lowerBatchLimit(Math.floor(batch.length / 2), "batch fails as a whole");
        }
        return;
      }
      // per license, rounded up, with the transaction's base cost counted in (so it is never too low)
      this.gasPerLicense = (gas + BigInt(batch.length) - 1n) / BigInt(batch.length);
      this.gasLearnedFrom = batch.length;
    }
    const maxTxGas = BigInt(client.config.maxTxGas);
    if (gasLimitFor(gas) > maxTxGas) {
      if (batch.length === 1) {
        store.fail([batch[0]!.id], "CHAIN_TX_FAILED", `needs ${gas} gas, more than a transaction may use`);
        return;
      }
      const fits = Number((BigInt(batch.length) * maxTxGas) / gasLimitFor(gas));
      this.lowerBatchLimit(Math.max(1, Math.min(fits, batch.length - 1)), `batch needs ${gas} gas`);
      return;
    }
    const licenseIds = batch.map((l) => l.id);
    const sent = await this.sender.signAndSend(calldata, gas, (batchId, nonce, txHash, rawTx) =>
      store.createBatch({ id: batchId, chainId: client.chainId, nonce, txHash, rawTx, licenseIds }),
    );
    if (!sent) return;
    metrics.batchSize.observe({ chain: label }, batch.length);
    const record: BatchRecord = {
      id: sent.batchId,
      chainId: client.chainId,
      nonce: sent.nonce,
      txHash: sent.txHash,
      rawTx: sent.rawTx,
      txHashes: [sent.txHash],
      status: "sent",
      createdAt: Date.now(),
      licenseIds,
    };
    const tracker = this.track(record, batch).finally(() => {
      this.inFlight.delete(record.id);
      this.events.trackerDone();
    });
    this.inFlight.set(record.id, tracker);
  }

  /**
   * Waits for one batch's receipt and confirmations and settles it when it was mined with success.
   * Anything else (reverted, dropped, no receipt in time, an error) leaves its outbox entry open and
   * makes the loop reconcile once the other batches in flight are done. Never rejects.
   */
  private async track(record: BatchRecord, batch: LicenseRecord[]): Promise<void> {
    const { logger } = this.ctx;
    try {
      const receipt = await this.receipts.waitReceipt({
        txHashes: record.txHashes,
        rawTx: record.rawTx,
        batchId: record.id,
      });
      if (receipt && receipt.status === 1) {
        await this.reconciler.settle(record, receipt, batch);
        return;
      }
      if (receipt) {
        // reverted (perhaps out of gas): estimate the next batches again
        this.gasPerLicense = undefined;
        this.gasLearnedFrom = 0;
      }
      logger.warn(
        { batch: record.id, nonce: record.nonce, tx: record.txHash, reverted: !!receipt },
        "batch not mined with success: reconciling",
      );
    } catch (error) {
      logger.warn({ batch: record.id, err: errorFields(error) }, "batch outcome unknown");
    }
    this.events.needsReconcile();
  }

  private lowerBatchLimit(limit: number, why: string): void {
    this.batchLimit = Math.max(1, limit);
    this.ctx.logger.warn({ batchLimit: this.batchLimit, why }, "batch size limit lowered");
  }
}
