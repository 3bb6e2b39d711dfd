/**
 * The transaction outbox: each signed batch transaction (and every fee-bumped replacement) is written
 * before it is broadcast, with its licenses moved to `submitted`; settling it from the chain confirms
 * the issued licenses (their `issued` events) and sends the others back to `accepted`.
 */
import type { BatchRecord, IssuedToken } from "../domain.js";
import { AppError } from "../errors.js";
import type { SqliteEventOutbox } from "./event-outbox.js";
import type { SqliteDb } from "./sqlite.js";
import type { TxOutboxStore } from "./types.js";

export class SqliteTxOutbox implements TxOutboxStore {
  constructor(
    private readonly db: SqliteDb,
    private readonly events: SqliteEventOutbox,
  ) {}

  createBatch(batch: Omit<BatchRecord, "status" | "createdAt" | "txHashes">): void {
    this.db.tx(() => {
      this.db
        .prepare(
          "INSERT INTO batches (id, chain_id, nonce, tx_hash, raw_tx, tx_hashes, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'sent', ?)",
        )
        .run(
          batch.id,
          batch.chainId,
          batch.nonce,
          batch.txHash,
          batch.rawTx,
          JSON.stringify([batch.txHash]),
          Date.now(),
        );
      // one statement for the batch's licenses (ids as a JSON array): all of them must still be accepted
      // (`+column`: looked up by id, not by scanning the status index over the whole queue)
      const changed = this.db
        .prepare(
          `UPDATE licenses SET status = 'submitted', batch_id = ?, tx_hash = ?, updated_at = ?
         WHERE id IN (SELECT value FROM json_each(?)) AND +chain_id = ? AND +status = 'accepted'`,
        )
        .run(batch.id, batch.txHash, Date.now(), JSON.stringify(batch.licenseIds), batch.chainId).changes;
      if (Number(changed) !== batch.licenseIds.length)
        throw new AppError(
          "STORE_CONFLICT",
          `${batch.licenseIds.length - Number(changed)} of the batch's licenses are not accepted`,
        );
    });
  }

  recordReplacement(batchId: string, txHash: string, rawTx: string): void {
    this.db.tx(() => {
      const row = this.db.prepare("SELECT tx_hashes FROM batches WHERE id = ?").get(batchId) as
        { tx_hashes: string } | undefined;
      if (!row) throw new AppError("STORE_CONFLICT", `no batch ${batchId}`);
      const hashes = [...(JSON.parse(row.tx_hashes) as string[]), txHash];
      this.db
        .prepare("UPDATE batches SET tx_hash = ?, raw_tx = ?, tx_hashes = ? WHERE id = ?")
        .run(txHash, rawTx, JSON.stringify(hashes), batchId);
      this.db
        .prepare(
          "UPDATE licenses SET tx_hash = ?, updated_at = ? WHERE batch_id = ? AND status = 'submitted'",
        )
        .run(txHash, Date.now(), batchId);
    });
  }

  settleBatch(batchId: string, issued: Map<string, IssuedToken>, status: "done" | "dropped"): void {
    this.db.tx(() => {
      if (issued.size > 0) {
        // one statement for the batch (tokens as a JSON array of [id, tokenId, txHash, blockNumber]),
        // each license looked up by id (`+column`: not by scanning the status index)
        const tokens = JSON.stringify(
          [...issued].map(([id, t]) => [id, t.tokenId, t.txHash, t.blockNumber] as const),
        );
        const confirmed = this.db
          .prepare(
            `UPDATE licenses SET status = 'confirmed', token_id = t.value ->> 1, tx_hash = t.value ->> 2,
             block_number = t.value ->> 3, updated_at = ?
           FROM json_each(?) AS t
           WHERE licenses.id = t.value ->> 0 AND +licenses.batch_id = ? AND +licenses.status = 'submitted'
           RETURNING licenses.id AS id`,
          )
          .all(Date.now(), tokens, batchId);
        if (this.events.enabled) for (const row of confirmed) this.events.record("issued", row.id as string);
      }
      this.db
        .prepare(
          "UPDATE licenses SET status = 'accepted', batch_id = NULL, tx_hash = NULL, updated_at = ? WHERE batch_id = ? AND status = 'submitted'",
        )
        .run(Date.now(), batchId);
      this.db.prepare("UPDATE batches SET status = ? WHERE id = ?").run(status, batchId);
    });
  }

  openBatches(chainId: number): BatchRecord[] {
    const rows = this.db
      .prepare("SELECT * FROM batches WHERE chain_id = ? AND status = 'sent' ORDER BY nonce")
      .all(chainId);
    return rows.map((row) => ({
      id: row.id as string,
      chainId: Number(row.chain_id),
      nonce: Number(row.nonce),
      txHash: row.tx_hash as string,
      rawTx: row.raw_tx as string,
      txHashes: JSON.parse(row.tx_hashes as string) as string[],
      status: "sent",
      createdAt: Number(row.created_at),
      licenseIds: this.db
        .prepare("SELECT id FROM licenses WHERE batch_id = ? AND status = 'submitted' ORDER BY seq")
        .all(row.id as string)
        .map((r) => r.id as string),
    }));
  }
}
