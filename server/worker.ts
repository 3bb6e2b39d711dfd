/**
 * The issue pipeline of one (chain, signer), in stages (cf. thirdweb Engine's send / mine / nonce
 * workers): the loop here takes accepted licenses of its chain in batches (up to `maxSize` licenses or
 * `maxWaitMs` after the oldest one) and single actions (revoke, renew); `worker/batches.ts` sizes and
 * tracks batches, up to `inFlight` at a time; `worker/sender.ts` signs with consecutive nonces from the
 * local nonce manager and writes each batch to the outbox before it is broadcast; `worker/receipts.ts`
 * awaits receipts and confirmations and bumps the fees of stuck transactions; `worker/reconciler.ts`
 * settles the outbox against the chain (the contract maps each request reference to its token, so
 * nothing is issued twice). A batch that is not mined with success stops the sending: the other
 * batches in flight finish, the outbox is reconciled, then sending resumes.
 */
import type { Logger } from "pino";
import { errorFields, errorText } from "../common/log.js";
import { Wakeable, sleep } from "../common/time.js";
import type { ChainClient } from "./chain.js";
import { AppError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { isConnectionError } from "./nonce.js";
import { BatchIssuer } from "./worker/batches.js";
import type { WorkerContext, WorkerOptions } from "./worker/context.js";
import { ReceiptWatcher } from "./worker/receipts.js";
import { Reconciler, revertName } from "./worker/reconciler.js";
import { TxSender } from "./worker/sender.js";

export type { WorkerOptions } from "./worker/context.js";
export { gasLimitFor } from "./worker/context.js";
export { parseIssued, revertName } from "./worker/reconciler.js";

/** Called with the signed transaction before it is broadcast (the caller writes it to the outbox). */
export type RecordSigned = (batchId: string, nonce: number, txHash: string, rawTx: string) => void;

interface Action {
  data: string;
  record?: RecordSigned;
  resolve: (result: { txHash: string; blockNumber: number }) => void;
  reject: (error: unknown) => void;
}

export class ChainWorker {
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private readonly idle = new Wakeable();
  private readonly actions: Action[] = [];
  private reconciled = false;
  private readonly sender: TxSender;
  private readonly receipts: ReceiptWatcher;
  private readonly reconciler: Reconciler;
  private readonly batches: BatchIssuer;

  constructor(
    private readonly client: ChainClient,
    private readonly store: WorkerContext["store"],
    private readonly options: WorkerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    const ctx: WorkerContext = {
      client,
      store,
      options,
      logger,
      metrics,
      label: client.config.name,
      stopped: () => this.stopped,
    };
    this.sender = new TxSender(ctx);
    this.receipts = new ReceiptWatcher(ctx);
    this.reconciler = new Reconciler(ctx, this.receipts, this.sender.nonces);
    this.batches = new BatchIssuer(ctx, this.sender, this.receipts, this.reconciler, {
      trackerDone: () => this.notify(),
      needsReconcile: () => {
        this.reconciled = false;
        this.notify();
      },
    });
  }

  private get label(): string {
    return this.client.config.name;
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.notify();
    await this.loopDone;
    await this.batches.drain();
    for (const action of this.actions.splice(0))
      action.reject(new AppError("CHAIN_UNAVAILABLE", "service stopping"));
  }

  /** New work arrived. */
  notify(): void {
    this.idle.wake();
  }

  /** The chain came back: settle the outbox and reload the nonce before sending again. */
  healthRestored(): void {
    this.reconciled = false;
    this.sender.nonces.resync();
    this.notify();
  }

  /**
   * Sends a single contract call (revoke, renew) through this worker's nonce sequence; `record` gets the
   * signed transaction before the broadcast (fee bumps are then recorded under its batch id).
   */
  sendAction(data: string, record?: RecordSigned): Promise<{ txHash: string; blockNumber: number }> {
    return new Promise((resolve, reject) => {
      this.actions.push({ data, resolve, reject, ...(record ? { record } : {}) });
      this.notify();
    });
  }

  /** Settles every outbox entry of this chain against the chain (start-up and after unknown outcomes). */
  private async reconcile(): Promise<void> {
    await this.reconciler.reconcile();
    this.reconciled = true;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.client.health.healthy) {
          await this.idle.sleep(200);
          continue;
        }
        if (!this.reconciled) {
          // outcomes to settle against the chain: first let the batches in flight finish
          await this.batches.drain();
          await this.reconcile();
          continue;
        }
        const action = this.actions.shift();
        if (action) {
          await this.runAction(action);
          continue;
        }
        if (this.batches.full) {
          await this.idle.sleep(1000); // a tracker that finishes wakes the loop
          continue;
        }
        const oldest = this.store.oldestAcceptedAt(this.client.chainId);
        if (oldest === undefined) {
          await this.idle.sleep(1000);
          continue;
        }
        const size = this.batches.size;
        const batch = this.store.acceptedFor(this.client.chainId, size);
        const waited = Date.now() - oldest;
        if (batch.length < size && waited < this.options.maxWaitMs) {
          // let the batch fill: not woken by each new request (that would re-read the queue per request)
          await sleep(this.options.maxWaitMs - waited);
          continue;
        }
        await this.batches.issue(batch);
      } catch (error) {
        // e.g. a send with an unknown outcome: its outbox entry is settled by reconcile before more are sent
        this.reconciled = false;
        this.metrics.txErrors.inc({ chain: this.label, kind: "loop" });
        this.logger.warn({ err: errorFields(error) }, "issue loop error");
        if (isConnectionError(error)) this.client.markDown(errorText(error).slice(0, 200));
        await sleep(250);
      }
    }
  }

  private async runAction(action: Action): Promise<void> {
    try {
      let gas: bigint;
      try {
        gas = await this.sender.estimateGas(action.data);
      } catch (error) {
        if (isConnectionError(error)) throw error;
        throw new AppError("INVALID_STATE", `the contract rejects this: ${revertName(error)}`, {
          cause: error,
        });
      }
      const sent = await this.sender.signAndSend(action.data, gas, action.record);
      if (!sent) throw new AppError("CHAIN_UNAVAILABLE", "the transaction could not be sent");
      const receipt = await this.receipts.waitReceipt({
        txHashes: [sent.txHash],
        rawTx: sent.rawTx,
        ...(action.record ? { batchId: sent.batchId } : {}),
      });
      if (!receipt || receipt.status !== 1)
        throw new AppError("CHAIN_TX_FAILED", "the transaction was not mined");
      action.resolve({ txHash: receipt.hash, blockNumber: receipt.blockNumber });
    } catch (error) {
      action.reject(
        error instanceof AppError
          ? error
          : new AppError("CHAIN_UNAVAILABLE", "the chain did not take the transaction", { cause: error }),
      );
    }
  }
}
