/**
 * Renew and revoke under an `Idempotency-Key`: one on-chain action per (API client, key). The key is
 * claimed by insert before anything is sent; the signed transaction is written to the outbox with the
 * action's state before the broadcast; a retry answers the stored result, waits for the action in
 * flight, or settles the action against the chain (after a crash) before it would ever send again.
 */
import type { ChainClient } from "../chain.js";
import type { Client, LicenseRecord } from "../domain.js";
import { AppError } from "../errors.js";
import { bodyHash } from "../ids.js";
import type { ActionRecord, ActionStore, LicenseStore } from "../store/types.js";
import type { ChainWorker } from "../worker.js";

export type ActionKind = "renew" | "revoke";
type Change = { expiresAt: number } | { revoked: true };

/** What a keyed action answers: the license, and whether it is a replay of an earlier request. */
export interface ActionResult {
  license: LicenseRecord;
  replayed: boolean;
}

/** The request a key stands for: the action, the license and the body (key order does not matter). */
export function actionBodyHash(action: ActionKind, licenseId: string, body: unknown): string {
  return bodyHash({ action, licenseId, body });
}

export class KeyedActions {
  /** Actions in flight in this process, by client and key: a concurrent retry waits for the same one. */
  private readonly inFlight = new Map<string, Promise<LicenseRecord>>();

  constructor(
    private readonly store: ActionStore & Pick<LicenseStore, "getLicense">,
    private readonly chains: {
      client(chainId: number): ChainClient;
      worker(chainId: number): ChainWorker;
      usable(chainId: number): boolean;
    },
  ) {}

  /**
   * Sends the action on `license` under the key, or answers the action already stored under it (another
   * action, license or body under the key: `IDEMPOTENCY_CONFLICT`). `calldata()` checks the license's
   * state and encodes the call; it runs only when the action is (re)sent.
   */
  async run(
    client: Client,
    key: string,
    action: ActionKind,
    license: LicenseRecord,
    body: unknown,
    calldata: () => string,
  ): Promise<ActionResult> {
    const bodyHash = actionBodyHash(action, license.id, body);
    const seen = this.store.getAction(client.id, key);
    if (seen) return { license: await this.replay(seen, bodyHash, calldata), replayed: true };
    const data = calldata();
    const claim = this.store.claimAction({
      clientId: client.id,
      key,
      licenseId: license.id,
      action,
      bodyHash,
    });
    if (!claim.claimed) {
      if (!claim.existing) throw conflict(); // the key of an issue request
      return { license: await this.replay(claim.existing, bodyHash, calldata), replayed: true };
    }
    return { license: await this.execute(client.id, key, action, license, data), replayed: false };
  }

  /** An earlier request's action: its result, the one in flight, or settled against the chain now. */
  private async replay(
    found: ActionRecord,
    bodyHash: string,
    calldata: () => string,
  ): Promise<LicenseRecord> {
    if (found.bodyHash !== bodyHash) throw conflict();
    const { clientId, key } = found;
    if (found.status === "done") return found.result!;
    const running = this.inFlight.get(slot(clientId, key));
    if (running) return running;
    // not in flight here: the service stopped (or a send's outcome was unknown) while it ran
    const license = this.store.getLicense(found.licenseId)!;
    if (found.status === "sent") {
      const settled = await this.settleSent(found, license.chainId);
      if (settled === "done") return this.finish(clientId, key, found.action, license);
      if (settled === "pending")
        throw new AppError(
          "IDEMPOTENCY_IN_PROGRESS",
          "the request with this Idempotency-Key is still being processed; retry later",
          { field: "Idempotency-Key" },
        );
      this.store.resetAction(clientId, key);
    }
    // pending: nothing of it was broadcast; send it now (or free the key if it cannot be sent any more)
    let data: string;
    try {
      data = calldata();
    } catch (error) {
      this.store.releaseAction(clientId, key);
      throw error;
    }
    return this.execute(clientId, key, found.action, license, data);
  }

  /** A `sent` action's transaction, as the outbox or else the chain knows it. */
  private async settleSent(found: ActionRecord, chainId: number): Promise<"done" | "dropped" | "pending"> {
    const batch = found.batch!;
    if (batch.status === "done") return "done";
    if (batch.status === "dropped") return "dropped";
    const chain = this.chains.client(chainId);
    const receipt = await onChain(() => chain.receiptOfAny([...batch.txHashes].reverse()));
    if (receipt) return receipt.status === 1 ? "done" : "dropped";
    return (await onChain(() => chain.knowsAny(batch.txHashes))) ? "pending" : "dropped";
  }

  /** Mined: read the change from the chain (the new expiry) and store it with the result. */
  private async finish(
    clientId: string,
    key: string,
    action: ActionKind,
    license: LicenseRecord,
  ): Promise<LicenseRecord> {
    let change: Change = { revoked: true };
    if (action === "renew") {
      const chain = this.chains.client(license.chainId);
      const tokenId = BigInt((license as { tokenId: string }).tokenId);
      const record = (await onChain(() => chain.contract.getFunction("license")(tokenId))) as {
        expiresAt: bigint;
      };
      change = { expiresAt: Number(record.expiresAt) };
    }
    return this.store.completeAction(clientId, key, change);
  }

  /** Sends the action (outbox entry before the broadcast), then stores its outcome. */
  private execute(
    clientId: string,
    key: string,
    action: ActionKind,
    license: LicenseRecord,
    data: string,
  ): Promise<LicenseRecord> {
    const { chainId } = license;
    const run = (async () => {
      if (!this.chains.usable(chainId))
        throw new AppError("CHAIN_UNAVAILABLE", `chain ${chainId} is unavailable`);
      await this.chains.worker(chainId).sendAction(data, (batchId, nonce, txHash, rawTx) => {
        this.store.actionSent(clientId, key, { id: batchId, chainId, nonce, txHash, rawTx });
      });
      return this.finish(clientId, key, action, license);
    })();
    const id = slot(clientId, key);
    const tracked = run.catch((error: unknown) => {
      this.giveUp(clientId, key, error);
      throw error;
    });
    this.inFlight.set(id, tracked);
    tracked
      .finally(() => {
        if (this.inFlight.get(id) === tracked) this.inFlight.delete(id);
      })
      .catch(() => undefined);
    return tracked;
  }

  /**
   * A failed action: when nothing of it can be on-chain (never broadcast, reverted, dropped) the key is
   * released, so a retry with it starts afresh; an unknown outcome (no receipt in time, a send with no
   * answer, the chain read after it) keeps the key, and a retry settles it against the chain.
   */
  private giveUp(clientId: string, key: string, error: unknown): void {
    const found = this.store.getAction(clientId, key);
    if (!found || found.status === "done") return;
    const code = error instanceof AppError ? error.code : undefined;
    const nothingOnChain =
      found.status === "pending" || found.batch?.status === "dropped" || code === "CHAIN_TX_FAILED";
    if (nothingOnChain) this.store.releaseAction(clientId, key);
  }
}

/** A chain read; a failure is `CHAIN_UNAVAILABLE` (retriable: the key keeps the action's state). */
async function onChain<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError("CHAIN_UNAVAILABLE", "the chain did not answer; retry with the same key", {
      cause: error,
    });
  }
}

function slot(clientId: string, key: string): string {
  return `${clientId}\u0000${key}`;
}

function conflict(): AppError {
  return new AppError(
    "IDEMPOTENCY_CONFLICT",
    "Idempotency-Key reused with another request (another action, license or body)",
    { field: "Idempotency-Key" },
  );
}
