/**
 * The reconcile stage of a chain worker: settles batches against the chain (the receipt's
 * `LicenseIssued` logs, else the contract's `tokenOfRequest`, so nothing is issued twice), isolates
 * the licenses that revert on their own, and settles every open outbox entry after a crash or an
 * unknown outcome.
 */
import { randomUUID } from "node:crypto";
import { errorText } from "../../common/log.js";
import type { Receipt } from "../chain.js";
import { LICENSE_INTERFACE } from "../contract.js";
import type { BatchRecord, IssuedToken, LicenseRecord } from "../domain.js";
import { isConnectionError, type NonceManager } from "../nonce.js";
import type { WorkerContext } from "./context.js";
import type { ReceiptWatcher } from "./receipts.js";

const LICENSE_ISSUED_TOPIC = LICENSE_INTERFACE.getEvent("LicenseIssued")!.topicHash.toLowerCase();

export class Reconciler {
  constructor(
    private readonly ctx: WorkerContext,
    private readonly receipts: ReceiptWatcher,
    private readonly nonces: NonceManager,
  ) {}

  /** Records the outcome of a batch transaction; a missing or reverted one sends its licenses back. */
  async settle(
    batch: BatchRecord,
    receipt: Receipt | undefined,
    /** The batch's licenses as sent (read from the store when not given). */
    known?: readonly LicenseRecord[],
  ): Promise<void> {
    const { store, metrics, label, logger, client } = this.ctx;
    const licenses =
      known ?? batch.licenseIds.map((id) => store.getLicense(id)).filter((l) => l !== undefined);
    const issued = new Map<string, IssuedToken>();
    if (receipt && receipt.status === 1) {
      const byRef = new Map(licenses.map((l) => [l.requestRef.toLowerCase(), l]));
      for (const log of receipt.logs) {
        const parsed = parseIssued(log, client.config.contract);
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
      metrics.txErrors.inc({ chain: label, kind: receipt ? "reverted" : "dropped" });
      this.nonces.resync();
    }
    store.settleBatch(batch.id, issued, receipt?.status === 1 ? "done" : "dropped");
    const now = Date.now();
    for (const license of licenses) {
      if (!issued.has(license.id)) continue;
      metrics.confirmed.inc({ chain: label });
      metrics.issueLatency.observe({ chain: label }, (now - license.createdAt) / 1000);
    }
    logger.info(
      { batch: batch.id, nonce: batch.nonce, size: licenses.length, issued: issued.size, tx: batch.txHash },
      receipt?.status === 1 ? "batch confirmed" : "batch not mined, licenses requeued",
    );
    if (receipt && receipt.status !== 1 && licenses.length > 0) {
      await this.isolate(licenses.filter((l) => !issued.has(l.id)).map((l) => store.getLicense(l.id)!));
    }
  }

  /** The token issued on this chain for `requestRef`, with its transaction, if any. */
  private async findIssued(requestRef: string): Promise<IssuedToken | undefined> {
    const { client } = this.ctx;
    const tokenId = (await client.contract.getFunction("tokenOfRequest")(requestRef)) as bigint;
    if (tokenId === 0n) return undefined;
    const logs = await client.provider.getLogs({
      address: client.config.contract,
      topics: [LICENSE_INTERFACE.getEvent("LicenseIssued")!.topicHash, null, null, requestRef],
      fromBlock: client.config.deployBlock ?? 0,
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
   * own (with the contract's error name), leave the rest accepted for the next batch. Returns how many
   * were settled or failed.
   */
  async isolate(batch: LicenseRecord[]): Promise<number> {
    const { client, store, metrics, label, logger } = this.ctx;
    let settled = 0;
    for (const license of batch) {
      if (license.status !== "accepted") continue;
      const found = await this.findIssued(license.requestRef);
      if (found) {
        // already on-chain (sent before a crash): confirm through a one-license pseudo batch
        const batchId = randomUUID();
        store.createBatch({
          id: batchId,
          chainId: client.chainId,
          nonce: -1,
          txHash: found.txHash,
          rawTx: "",
          licenseIds: [license.id],
        });
        store.settleBatch(batchId, new Map([[license.id, found]]), "done");
        metrics.confirmed.inc({ chain: label });
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
        await client.provider.estimateGas({ from: client.wallet.address, to: client.config.contract, data });
      } catch (error) {
        if (isConnectionError(error)) throw error;
        const reason = revertName(error);
        logger.warn({ license: license.id, reason }, "license reverts on its own: failed");
        store.fail([license.id], "CHAIN_TX_FAILED", `the contract rejected the license: ${reason}`);
        metrics.failed.inc({ chain: label, code: "CHAIN_TX_FAILED" });
        settled++;
      }
    }
    return settled;
  }

  /** Settles every outbox entry of this chain against the chain (start-up and after unknown outcomes). */
  async reconcile(): Promise<void> {
    const open = this.ctx.store.openBatches(this.ctx.client.chainId);
    for (const batch of open) {
      await this.settle(
        batch,
        await this.receipts.waitReceipt({ txHashes: batch.txHashes, rawTx: batch.rawTx, batchId: batch.id }),
      );
    }
    if (open.length > 0) this.ctx.logger.info({ batches: open.length }, "outbox reconciled");
    this.nonces.resync();
  }
}

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

/** The contract's custom error name from a failed estimate/call (any error of the ABI), else the message. */
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
