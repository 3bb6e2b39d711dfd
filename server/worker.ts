/**
 * The issue pipeline of one (chain, signer): takes accepted licenses of its chain in batches (up to
 * `maxSize` licenses or `maxWaitMs` after the oldest one) and sends them as `issueBatch` transactions,
 * up to `inFlight` at a time: they are signed and broadcast one after the other with consecutive nonces
 * from the local nonce manager, and each one's receipt and confirmations are awaited on their own, so
 * the next batch goes out while earlier ones are being mined. Every batch is written to the outbox (with
 * its signed transaction and hash) before it is broadcast, so that after a crash `reconcile` can settle
 * it against the chain: the contract maps each request reference to its token (`tokenOfRequest`), so
 * nothing is issued twice. A batch that is not mined with success (reverted, dropped, no receipt in
 * time) is not settled by its tracker: the loop stops sending, lets the other in-flight batches finish,
 * and reconciles the outbox before it sends again.
 */
import { randomUUID } from "node:crypto";
import { Transaction, keccak256, type FeeData } from "ethers";
import type { Logger } from "pino";
import { LICENSE_INTERFACE, type ChainClient, type Receipt } from "./chain.js";
import { AppError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { NonceManager, errorText, isConnectionError, isNonceError } from "./nonce.js";
import type { BatchRecord, IssuedToken, LicenseRecord, Store } from "./store.js";
import { encodeIssueBatch, signTx } from "./txcodec.js";

export interface WorkerOptions {
  maxSize: number;
  maxWaitMs: number;
  /** Batch transactions in flight at once (default 1). */
  inFlight?: number;
  /** `every-batch` (default) or `learned`: see `batching.gasEstimate` in config.ts. */
  gasEstimate?: "every-batch" | "learned";
  /** Reuse fee data this long (default 0: fetched per transaction). */
  feeCacheMs?: number;
  receiptPollMs?: number;
  receiptTimeoutMs?: number;
  /** A transaction still pending after this long is replaced with higher fees (same nonce). */
  stuckAfterMs?: number;
  feeBumpPercent?: number;
  maxFeeBumps?: number;
}

interface Pending {
  txHashes: string[];
  rawTx: string;
  /** Outbox batch to record replacements in (none for single actions). */
  batchId?: string;
}

interface Action {
  data: string;
  resolve: (result: { txHash: string; blockNumber: number }) => void;
  reject: (error: unknown) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ChainWorker {
  readonly nonces: NonceManager;
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly actions: Action[] = [];
  private reconciled = false;
  /** Current batch size limit: lowered when a batch needs more gas than a transaction may use. */
  private batchLimit: number;
  /** Trackers of the batches in flight (receipt → settle), by batch id. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Gas per license from the last estimate (`gasEstimate: learned`); undefined = estimate the next batch. */
  private gasPerLicense: bigint | undefined;
  /** Size of the batch `gasPerLicense` was learned from; larger batches are estimated again. */
  private gasLearnedFrom = 0;

  constructor(
    private readonly client: ChainClient,
    private readonly store: Store,
    private readonly options: WorkerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.batchLimit = options.maxSize;
    this.nonces = new NonceManager(() =>
      client.provider.getTransactionCount(client.wallet.address, "pending"),
    );
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
    await this.drain();
    for (const action of this.actions.splice(0))
      action.reject(new AppError("CHAIN_UNAVAILABLE", "service stopping"));
  }

  /** New work arrived. */
  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The chain came back: settle the outbox and reload the nonce before sending again. */
  healthRestored(): void {
    this.reconciled = false;
    this.nonces.resync();
    this.notify();
  }

  /** Sends a single contract call (revoke, renew) through this worker's nonce sequence. */
  sendAction(data: string): Promise<{ txHash: string; blockNumber: number }> {
    return new Promise((resolve, reject) => {
      this.actions.push({ data, resolve, reject });
      this.notify();
    });
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.client.health.healthy) {
          await this.idle(200);
          continue;
        }
        if (!this.reconciled) {
          // outcomes to settle against the chain: first let the batches in flight finish
          await this.drain();
          await this.reconcile();
          continue;
        }
        const action = this.actions.shift();
        if (action) {
          await this.runAction(action);
          continue;
        }
        if (this.inFlight.size >= Math.max(1, this.options.inFlight ?? 1)) {
          await this.idle(1000); // a tracker that finishes wakes the loop
          continue;
        }
        const oldest = this.store.oldestAcceptedAt(this.client.chainId);
        if (oldest === undefined) {
          await this.idle(1000);
          continue;
        }
        const size = Math.min(this.options.maxSize, this.batchLimit);
        const batch = this.store.acceptedFor(this.client.chainId, size);
        const waited = Date.now() - oldest;
        if (batch.length < size && waited < this.options.maxWaitMs) {
          // let the batch fill: not woken by each new request (that would re-read the queue per request)
          await sleep(this.options.maxWaitMs - waited);
          continue;
        }
        await this.issue(batch);
      } catch (error) {
        // e.g. a send with an unknown outcome: its outbox entry is settled by reconcile before more are sent
        this.reconciled = false;
        this.metrics.txErrors.inc({ chain: this.label, kind: "loop" });
        this.logger.warn({ err: errorText(error) }, "issue loop error");
        if (isConnectionError(error)) this.client.markDown(errorText(error).slice(0, 200));
        await sleep(250);
      }
    }
  }

  private async issue(batch: LicenseRecord[]): Promise<void> {
    const { client } = this;
    const calldata = encodeIssueBatch(batch);
    const data = `0x${calldata.toString("hex")}`;
    let gas: bigint;
    if (
      this.options.gasEstimate === "learned" &&
      this.gasPerLicense !== undefined &&
      batch.length <= this.gasLearnedFrom
    ) {
      // an estimate executes the whole batch on the node: learned from the largest batch estimated so
      // far, then scaled to the batch size (plus the fixed part of a transaction)
      gas = this.gasPerLicense * BigInt(batch.length) + BATCH_BASE_GAS;
    } else {
      try {
        gas = await client.provider.estimateGas({
          from: client.wallet.address,
          to: client.config.contract,
          data,
        });
      } catch (error) {
        if (isConnectionError(error)) throw error;
        this.logger.warn({ size: batch.length, err: errorText(error).slice(0, 300) }, "batch would revert");
        const settled = await this.isolate(batch);
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
        this.store.fail(
          [batch[0]!.id],
          "CHAIN_TX_FAILED",
          `needs ${gas} gas, more than a transaction may use`,
        );
        return;
      }
      const fits = Number((BigInt(batch.length) * maxTxGas) / gasLimitFor(gas));
      this.lowerBatchLimit(Math.max(1, Math.min(fits, batch.length - 1)), `batch needs ${gas} gas`);
      return;
    }
    const licenseIds = batch.map((l) => l.id);
    const sent = await this.signAndSend(calldata, gas, (batchId, nonce, txHash, rawTx) =>
      this.store.createBatch({ id: batchId, chainId: client.chainId, nonce, txHash, rawTx, licenseIds }),
    );
    if (!sent) return;
    this.metrics.batchSize.observe({ chain: this.label }, batch.length);
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
      this.notify();
    });
    this.inFlight.set(record.id, tracker);
  }

  /**
   * Waits for one batch's receipt and confirmations and settles it when it was mined with success.
   * Anything else (reverted, dropped, no receipt in time, an error) leaves its outbox entry open and
   * makes the loop reconcile once the other batches in flight are done. Never rejects.
   */
  private async track(record: BatchRecord, batch: LicenseRecord[]): Promise<void> {
    try {
      const receipt = await this.waitReceipt({
        txHashes: record.txHashes,
        rawTx: record.rawTx,
        batchId: record.id,
      });
      if (receipt && receipt.status === 1) {
        await this.settle(record, receipt, batch);
        return;
      }
      if (receipt) {
        // reverted (perhaps out of gas): estimate the next batches again
        this.gasPerLicense = undefined;
        this.gasLearnedFrom = 0;
      }
      this.logger.warn(
        { batch: record.id, nonce: record.nonce, tx: record.txHash, reverted: !!receipt },
        "batch not mined with success: reconciling",
      );
    } catch (error) {
      this.logger.warn({ batch: record.id, err: errorText(error).slice(0, 200) }, "batch outcome unknown");
    }
    this.reconciled = false;
    this.notify();
  }

  /** Waits until no batch is in flight. */
  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()]);
  }

  private lowerBatchLimit(limit: number, why: string): void {
    this.batchLimit = Math.max(1, limit);
    this.logger.warn({ batchLimit: this.batchLimit, why }, "batch size limit lowered");
  }

  /**
   * Signs with the next nonce, records (via `record`) before broadcasting, broadcasts. Returns undefined
   * when the transaction certainly did not reach the node (the record is then dropped by the caller's
   * batch logic through `settleBatch`).
   */
  private async signAndSend(
    data: string | Buffer,
    gas: bigint,
    record?: (batchId: string, nonce: number, txHash: string, rawTx: string) => void,
  ): Promise<{ batchId: string; txHash: string; rawTx: string; nonce: number } | undefined> {
    const { client } = this;
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
      if (/already known/i.test(errorText(error))) {
        // the node has it: same as sent
      } else if (isNonceError(error) || isConnectionError(error)) {
        this.metrics.txErrors.inc({ chain: this.label, kind: isNonceError(error) ? "nonce" : "connection" });
        this.logger.warn({ nonce, err: errorText(error).slice(0, 200) }, "send failed, not sent");
        this.nonces.resync();
        if (record) this.store.settleBatch(batchId, new Map(), "dropped");
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

  /**
   * Fee data, reused for `feeCacheMs` (shared with the health probe, which refreshes it; a fee bump
   * always fetches fresh data).
   */
  private feeData(): Promise<FeeData> {
    return this.client.feeData(this.options.feeCacheMs ?? 0);
  }

  /**
   * Polls for a receipt of any hash sent for the nonce and for the required confirmations (no ethers
   * polling cadence). Returns undefined when no hash is mined or known to the node (dropped or never
   * arrived). A transaction still pending after `stuckAfterMs` is replaced by the same call with the
   * same nonce and fees raised by `feeBumpPercent` (at most `maxFeeBumps` times); every hash stays
   * in the outbox, since any of them may be the one mined.
   */
  private async waitReceipt(pending: Pending): Promise<Receipt | undefined> {
    const hashes = [...pending.txHashes];
    let rawTx = pending.rawTx;
    let lastSentAt = Date.now();
    let bumps = 0;
    const deadline = Date.now() + (this.options.receiptTimeoutMs ?? 60_000);
    const confirmations = this.client.config.confirmations;
    const pollMs = this.options.receiptPollMs ?? 50;
    let interval = pollMs;
    let knownCheckedAt = 0;
    while (Date.now() < deadline && !this.stopped) {
      // newest hash first (a replacement is the likelier one mined); several in one JSON-RPC batch
      const receipt = await this.client.receiptOfAny([...hashes].reverse());
      if (receipt) {
        // a mined receipt has one confirmation: the head is only read when more are required
        if (confirmations <= 1) return receipt;
        const head = Number(await this.client.rpc<string>("eth_blockNumber", []));
        if (head - receipt.blockNumber + 1 >= confirmations) return receipt;
      } else {
        // still pending: known to the node? (checked at most every KNOWN_CHECK_MS, not on every poll)
        if (Date.now() - knownCheckedAt >= KNOWN_CHECK_MS) {
          knownCheckedAt = Date.now();
          if (!(await this.client.knowsAny([...hashes].reverse()))) return undefined;
        }
        const stuckAfter = this.options.stuckAfterMs ?? 30_000;
        if (rawTx && Date.now() - lastSentAt >= stuckAfter && bumps < (this.options.maxFeeBumps ?? 5)) {
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
    throw new Error(`no receipt for ${hashes.join(", ")} yet`);
  }

  /** Re-signs `rawTx` with the same nonce and higher fees, records it, broadcasts it. */
  private async bumpFee(
    rawTx: string,
    batchId: string | undefined,
  ): Promise<{ rawTx: string; txHash: string } | undefined> {
    const { client } = this;
    const old = Transaction.from(rawTx);
    const fee = await client.feeData(0);
    const factor = BigInt(100 + (this.options.feeBumpPercent ?? 25));
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
    if (batchId) this.store.recordReplacement(batchId, txHash, replacement);
    try {
      await client.provider.send("eth_sendRawTransaction", [replacement]);
    } catch (error) {
      // e.g. the original was mined meanwhile ("nonce too low"): the receipt poll finds it
      this.logger.warn({ nonce: old.nonce, err: errorText(error).slice(0, 200) }, "fee bump not accepted");
      return undefined;
    }
    this.metrics.feeBumps.inc({ chain: this.label });
    this.logger.warn(
      { nonce: old.nonce, replaced: old.hash, by: txHash },
      "stuck transaction replaced with higher fees",
    );
    return { rawTx: replacement, txHash };
  }

  /** Records the outcome of a batch transaction; a missing or reverted one sends its licenses back. */
  private async settle(
    batch: BatchRecord,
    receipt: Receipt | undefined,
    /** The batch's licenses as sent (read from the store when not given). */
    known?: readonly LicenseRecord[],
  ): Promise<void> {
    const licenses =
      known ?? batch.licenseIds.map((id) => this.store.getLicense(id)).filter((l) => l !== undefined);
    const issued = new Map<string, IssuedToken>();
    if (receipt && receipt.status === 1) {
      const byRef = new Map(licenses.map((l) => [l.requestRef.toLowerCase(), l]));
      for (const log of receipt.logs) {
        const parsed = parseIssued(log, this.client.config.contract);
        const license = parsed && byRef.get(parsed.requestRef.toLowerCase());
        if (parsed && license) {
          issued.set(license.id, {
            tokenId: parsed.tokenId,
            txHash: receipt.hash,
            blockNumber: receipt.blockNumber,
          });
        }
      }
    }
    if (!receipt || receipt.status !== 1) {
      // Dropped or reverted: a license may still have been issued by another transaction (after a crash).
      for (const license of licenses) {
        const found = await this.findIssued(license.requestRef);
        if (found) issued.set(license.id, found);
      }
      this.metrics.txErrors.inc({ chain: this.label, kind: receipt ? "reverted" : "dropped" });
      this.nonces.resync();
    }
    this.store.settleBatch(batch.id, issued, receipt?.status === 1 ? "done" : "dropped");
    const now = Date.now();
    for (const license of licenses) {
      if (!issued.has(license.id)) continue;
      this.metrics.confirmed.inc({ chain: this.label });
      this.metrics.issueLatency.observe({ chain: this.label }, (now - license.createdAt) / 1000);
    }
    this.logger.info(
      { batch: batch.id, nonce: batch.nonce, size: licenses.length, issued: issued.size, tx: batch.txHash },
      receipt?.status === 1 ? "batch confirmed" : "batch not mined, licenses requeued",
    );
    if (receipt && receipt.status !== 1 && licenses.length > 0) {
      await this.isolate(licenses.filter((l) => !issued.has(l.id)).map((l) => this.store.getLicense(l.id)!));
    }
  }

  /** The token issued on this chain for `requestRef`, with its transaction, if any. */
  private async findIssued(requestRef: string): Promise<IssuedToken | undefined> {
    const { contract } = this.client;
    const tokenId = (await contract.getFunction("tokenOfRequest")(requestRef)) as bigint;
    if (tokenId === 0n) return undefined;
    const logs = await this.client.provider.getLogs({
      address: this.client.config.contract,
      topics: [LICENSE_INTERFACE.getEvent("LicenseIssued")!.topicHash, null, null, requestRef],
      fromBlock: this.client.config.deployBlock ?? 0,
      toBlock: "latest",
    });
    const log = logs[0];
    return {
      tokenId: tokenId.toString(),
      txHash: log?.transactionHash ?? "",
      blockNumber: log?.blockNumber ?? 0,
    };
  }

  /**
   * A batch would revert: settle licenses already issued on-chain, fail the ones that revert on their
   * own (with the contract's error name), leave the rest accepted for the next batch.
   */
  private async isolate(batch: LicenseRecord[]): Promise<number> {
    let settled = 0;
    for (const license of batch) {
      if (license.status !== "accepted") continue;
      const found = await this.findIssued(license.requestRef);
      if (found) {
        // already on-chain (sent before a crash): confirm through a one-license pseudo batch
        const batchId = randomUUID();
        this.store.createBatch({
          id: batchId,
          chainId: this.client.chainId,
          nonce: -1,
          txHash: found.txHash,
          rawTx: "",
          licenseIds: [license.id],
        });
        this.store.settleBatch(batchId, new Map([[license.id, found]]), "done");
        this.metrics.confirmed.inc({ chain: this.label });
        settled++;
        continue;
      }
      const data = LICENSE_INTERFACE.encodeFunctionData("issueBatch", [
        [license.licensee],
        [
          {
            productId: license.productId,
            expiresAt: license.expiresAt,
            seats: license.seats,
            locked: false,
            termsHash: license.termsHash,
            requestRef: license.requestRef,
          },
        ],
      ]);
      try {
        await this.client.provider.estimateGas({
          from: this.client.wallet.address,
          to: this.client.config.contract,
          data,
        });
      } catch (error) {
        if (isConnectionError(error)) throw error;
        const reason = revertName(error);
        this.logger.warn({ license: license.id, reason }, "license reverts on its own: failed");
        this.store.fail([license.id], "CHAIN_TX_FAILED", `the contract rejected the license: ${reason}`);
        this.metrics.failed.inc({ chain: this.label, code: "CHAIN_TX_FAILED" });
        settled++;
      }
    }
    return settled;
  }

  /** Settles every outbox entry of this chain against the chain (start-up and after unknown outcomes). */
  async reconcile(): Promise<void> {
    const open = this.store.openBatches(this.client.chainId);
    for (const batch of open) {
      await this.settle(
        batch,
        await this.waitReceipt({ txHashes: batch.txHashes, rawTx: batch.rawTx, batchId: batch.id }),
      );
    }
    if (open.length > 0) this.logger.info({ batches: open.length }, "outbox reconciled");
    this.nonces.resync();
    this.reconciled = true;
  }

  private async runAction(action: Action): Promise<void> {
    try {
      let gas: bigint;
      try {
        gas = await this.client.provider.estimateGas({
          from: this.client.wallet.address,
          to: this.client.config.contract,
          data: action.data,
        });
      } catch (error) {
        if (isConnectionError(error)) throw error;
        throw new AppError("INVALID_STATE", `the contract rejects this: ${revertName(error)}`, {
          cause: error,
        });
      }
      const sent = await this.signAndSend(action.data, gas);
      if (!sent) throw new AppError("CHAIN_UNAVAILABLE", "the transaction could not be sent");
      const receipt = await this.waitReceipt({ txHashes: [sent.txHash], rawTx: sent.rawTx });
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

/** Gas limit for an estimate: 20 % headroom plus 10k. */
export function gasLimitFor(estimate: bigint): bigint {
  return (estimate * 12n) / 10n + 10_000n;
}

const LICENSE_ISSUED_TOPIC = LICENSE_INTERFACE.getEvent("LicenseIssued")!.topicHash.toLowerCase();

/** A pending transaction is checked for being known to the node (not dropped) at most this often. */
const KNOWN_CHECK_MS = 1000;

/** Receipt polls back off from `receiptPollMs` up to this interval. */
const MAX_POLL_MS = 500;

/** Fixed gas of a batch transaction on top of its licenses' share (learned gas per license). */
const BATCH_BASE_GAS = 30_000n;

export function parseIssued(
  log: Receipt["logs"][number],
  contract: string,
): { tokenId: string; requestRef: string } | undefined {
  if (log.address.toLowerCase() !== contract.toLowerCase()) return undefined;
  // LicenseIssued(uint256 indexed tokenId, address indexed licensee, bytes32 indexed requestRef, ...):
  // token id and request reference are topics, no ABI decoding needed; any other event (e.g. the
  // ERC-721 Transfer of each mint) is not one
  if (log.topics.length !== 4 || log.topics[0]?.toLowerCase() !== LICENSE_ISSUED_TOPIC) return undefined;
  return { tokenId: BigInt(log.topics[1]!).toString(), requestRef: log.topics[3]!.toLowerCase() };
}

/** The contract's custom error name from a failed estimate/call, when it can be decoded. */
export function revertName(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const data = (current as { data?: unknown }).data;
    if (typeof data === "string" && data.startsWith("0x") && data.length >= 10) {
      try {
        const parsed = LICENSE_INTERFACE.parseError(data);
        if (parsed) return `${parsed.name}(${parsed.args.map(String).join(", ")})`;
      } catch {
        // not one of ours
      }
    }
    current =
      (current as { cause?: unknown; error?: unknown }).error ?? (current as { cause?: unknown }).cause;
  }
  return errorText(error).slice(0, 200);
}
