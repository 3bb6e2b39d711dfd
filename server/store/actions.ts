/**
 * Renew and revoke under an `Idempotency-Key`: the key is claimed by insert into `idempotency` (the
 * namespace of issue's keys), the action's state lives in `action_keys`, its signed transaction in the
 * transaction outbox (`batches`, a batch without licenses). Each step is one transaction, so the key's
 * record and the outbox agree after a crash at any point.
 */
import type { LicenseRecord } from "../domain.js";
import type { SqliteLicenses } from "./licenses.js";
import type { SqliteDb } from "./sqlite.js";
import type { SqliteTxOutbox } from "./tx-outbox.js";
import type { ActionClaim, ActionRecord, ActionStore, SignedAction } from "./types.js";

export class SqliteActions implements ActionStore {
  constructor(
    private readonly db: SqliteDb,
    private readonly licenses: SqliteLicenses,
    private readonly batches: SqliteTxOutbox,
  ) {}

  claimAction(claim: ActionClaim): { claimed: true } | { claimed: false; existing?: ActionRecord } {
    return this.db.tx(() => {
      const inserted = this.db
        .prepare(
          `INSERT INTO idempotency (client_id, key, body_hash, license_id) VALUES (?, ?, ?, ?)
           ON CONFLICT (client_id, key) DO NOTHING`,
        )
        .run(claim.clientId, claim.key, claim.bodyHash, claim.licenseId);
      if (Number(inserted.changes) === 0) {
        const existing = this.getAction(claim.clientId, claim.key);
        return existing ? { claimed: false, existing } : { claimed: false };
      }
      const now = Date.now();
      this.db
        .prepare(
          `INSERT INTO action_keys (client_id, key, license_id, action, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
        )
        .run(claim.clientId, claim.key, claim.licenseId, claim.action, now, now);
      return { claimed: true };
    });
  }

  getAction(clientId: string, key: string): ActionRecord | undefined {
    const row = this.db
      .prepare(
        `SELECT a.*, i.body_hash, b.status AS batch_status, b.tx_hashes
         FROM action_keys a JOIN idempotency i ON i.client_id = a.client_id AND i.key = a.key
         LEFT JOIN batches b ON b.id = a.batch_id
         WHERE a.client_id = ? AND a.key = ?`,
      )
      .get(clientId, key);
    if (!row) return undefined;
    return {
      clientId,
      key,
      licenseId: row.license_id as string,
      action: row.action as ActionRecord["action"],
      bodyHash: row.body_hash as string,
      status: row.status as ActionRecord["status"],
      ...(row.batch_id
        ? {
            batch: {
              id: row.batch_id as string,
              status: row.batch_status as "sent" | "done" | "dropped",
              txHashes: JSON.parse(row.tx_hashes as string) as string[],
            },
          }
        : {}),
      ...(row.result ? { result: JSON.parse(row.result as string) as LicenseRecord } : {}),
    };
  }

  actionSent(clientId: string, key: string, signed: SignedAction): void {
    this.db.tx(() => {
      this.batches.createBatch({ ...signed, licenseIds: [] });
      this.db
        .prepare(
          "UPDATE action_keys SET status = 'sent', batch_id = ?, updated_at = ? WHERE client_id = ? AND key = ?",
        )
        .run(signed.id, Date.now(), clientId, key);
    });
  }

  completeAction(
    clientId: string,
    key: string,
    change: { expiresAt: number } | { revoked: true },
  ): LicenseRecord {
    return this.db.tx(() => {
      const action = this.getAction(clientId, key)!;
      if (action.batch) this.batches.settleBatch(action.batch.id, new Map(), "done");
      if ("revoked" in change) this.licenses.setRevoked(action.licenseId);
      else this.licenses.setExpiry(action.licenseId, change.expiresAt);
      const license = this.licenses.getLicense(action.licenseId)!;
      this.db
        .prepare(
          "UPDATE action_keys SET status = 'done', result = ?, updated_at = ? WHERE client_id = ? AND key = ?",
        )
        .run(JSON.stringify(license), Date.now(), clientId, key);
      return license;
    });
  }

  resetAction(clientId: string, key: string): void {
    this.db.tx(() => {
      this.dropBatch(clientId, key);
      this.db
        .prepare(
          "UPDATE action_keys SET status = 'pending', batch_id = NULL, updated_at = ? WHERE client_id = ? AND key = ?",
        )
        .run(Date.now(), clientId, key);
    });
  }

  releaseAction(clientId: string, key: string): void {
    this.db.tx(() => {
      this.dropBatch(clientId, key);
      this.db.prepare("DELETE FROM action_keys WHERE client_id = ? AND key = ?").run(clientId, key);
      this.db.prepare("DELETE FROM idempotency WHERE client_id = ? AND key = ?").run(clientId, key);
    });
  }

  /** The action's transaction (if any) will never be mined: its outbox entry is settled `dropped`. */
  private dropBatch(clientId: string, key: string): void {
    const batch = this.getAction(clientId, key)?.batch;
    if (batch?.status === "sent") this.batches.settleBatch(batch.id, new Map(), "dropped");
  }
}
