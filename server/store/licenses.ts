/**
 * The license aggregate: license rows (their lifecycle in `status`) and idempotency keys. Every state
 * change writes its lifecycle event to the event outbox in the same transaction.
 */
import type { SQLInputValue } from "node:sqlite";
import type { InsertResult, LicenseRecord, ListFilter, NewLicense, NewLicenseItem } from "../domain.js";
import type { SqliteEventOutbox } from "./event-outbox.js";
import { readLicense, toLicense } from "./rows.js";
import type { SqliteDb } from "./sqlite.js";
import type { LicenseStore } from "./types.js";

export class SqliteLicenses implements LicenseStore {
  constructor(
    private readonly db: SqliteDb,
    private readonly events: SqliteEventOutbox,
  ) {}

  insertLicense(license: NewLicense, idempotency?: { key: string; bodyHash: string }): InsertResult {
    return this.db.tx(() => this.insertOne(license, idempotency));
  }

  insertLicenses(items: readonly NewLicenseItem[]): (InsertResult | { error: unknown })[] {
    if (items.length === 0) return [];
    try {
      return this.db.tx(() => items.map((item) => this.insertOne(item.license, item.idempotency)));
    } catch {
      // one item broke the group: every item in its own transaction, so the others still commit
      return items.map((item) => {
        try {
          return this.insertLicense(item.license, item.idempotency);
        } catch (error) {
          return { error };
        }
      });
    }
  }

  /** The body of an insert; runs inside a transaction. */
  private insertOne(license: NewLicense, idempotency?: { key: string; bodyHash: string }): InsertResult {
    if (idempotency) {
      // the key first: one insert instead of a look-up plus an insert (the service already peeked for a
      // replay before choosing a chain); taken meanwhile → the stored license answers
      const claimed = this.db
        .prepare(
          `INSERT INTO idempotency (client_id, key, body_hash, license_id) VALUES (?, ?, ?, ?)
         ON CONFLICT (client_id, key) DO NOTHING`,
        )
        .run(license.clientId, idempotency.key, idempotency.bodyHash, license.id);
      if (Number(claimed.changes) === 0) {
        const existing = this.db
          .prepare("SELECT body_hash, license_id FROM idempotency WHERE client_id = ? AND key = ?")
          .get(license.clientId, idempotency.key) as { body_hash: string; license_id: string };
        const stored = this.getLicense(existing.license_id)!;
        return { created: false, license: stored, sameBody: existing.body_hash === idempotency.bodyHash };
      }
    }
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO licenses (id, client_id, product_id, licensee, expires_at, seats, request_ref, terms_hash,
           chain_id, policy, reason, candidates, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', ?, ?)`,
      )
      .run(
        license.id,
        license.clientId,
        license.productId,
        license.licensee,
        license.expiresAt,
        license.seats,
        license.requestRef,
        license.termsHash,
        license.chainId,
        license.policy,
        license.reason,
        JSON.stringify(license.candidates),
        now,
        now,
      );
    this.events.record("requested", license.id);
    // the row as written, without reading it back (the same fields toLicense gives for it)
    const record: LicenseRecord = {
      ...license,
      candidates: [...license.candidates],
      status: "accepted",
      createdAt: now,
      updatedAt: now,
      revoked: false,
    };
    return { created: true, license: record };
  }

  findIdempotent(clientId: string, key: string): { bodyHash: string; license: LicenseRecord } | undefined {
    const row = this.db
      .prepare("SELECT body_hash, license_id FROM idempotency WHERE client_id = ? AND key = ?")
      .get(clientId, key) as { body_hash: string; license_id: string } | undefined;
    return row ? { bodyHash: row.body_hash, license: this.getLicense(row.license_id)! } : undefined;
  }

  getLicense(id: string): LicenseRecord | undefined {
    return readLicense(this.db, id);
  }

  listLicenses(filter: ListFilter): { items: LicenseRecord[]; next?: number } {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    const add = (sql: string, value: SQLInputValue | undefined): void => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    add("client_id = ?", filter.clientId);
    add("lower(licensee) = lower(?)", filter.licensee);
    add("product_id = ?", filter.productId);
    add("status = ?", filter.status);
    add("chain_id = ?", filter.chainId);
    add(filter.newestFirst ? "seq < ?" : "seq > ?", filter.after);
    const sql = `SELECT * FROM licenses ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq ${filter.newestFirst ? "DESC" : ""} LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, filter.limit + 1);
    const page = rows.slice(0, filter.limit);
    const items = page.map(toLicense);
    const last = page.at(-1);
    return rows.length > filter.limit && last ? { items, next: Number(last.seq) } : { items };
  }

  acceptedFor(chainId: number, max: number): LicenseRecord[] {
    return this.db
      .prepare("SELECT * FROM licenses WHERE chain_id = ? AND status = 'accepted' ORDER BY seq LIMIT ?")
      .all(chainId, max)
      .map(toLicense);
  }

  oldestAcceptedAt(chainId: number): number | undefined {
    // the first in queue order (an index seek; min(created_at) had to scan every accepted row)
    const row = this.db
      .prepare(
        "SELECT created_at AS t FROM licenses WHERE chain_id = ? AND status = 'accepted' ORDER BY seq LIMIT 1",
      )
      .get(chainId) as { t: number | null } | undefined;
    return row?.t ?? undefined;
  }

  fail(ids: string[], errorCode: string, errorMessage: string): void {
    this.db.tx(() => {
      const update = this.db.prepare(
        "UPDATE licenses SET status = 'failed', error_code = ?, error_message = ?, updated_at = ? WHERE id = ? AND status IN ('accepted','submitted')",
      );
      for (const id of ids) {
        if (Number(update.run(errorCode, errorMessage, Date.now(), id).changes) === 1)
          this.events.record("failed", id);
      }
    });
  }

  reassign(id: string, chainId: number, reason: string): boolean {
    return this.db.tx(() => {
      const result = this.db
        .prepare(
          "UPDATE licenses SET chain_id = ?, reason = ?, updated_at = ? WHERE id = ? AND status = 'accepted'",
        )
        .run(chainId, reason, Date.now(), id);
      if (Number(result.changes) !== 1) return false;
      this.events.record("reassigned", id);
      return true;
    });
  }

  setRevoked(id: string): void {
    this.db.tx(() => {
      const result = this.db
        .prepare("UPDATE licenses SET revoked = 1, updated_at = ? WHERE id = ? AND revoked = 0")
        .run(Date.now(), id);
      if (Number(result.changes) === 1) this.events.record("revoked", id);
    });
  }

  setExpiry(id: string, expiresAt: number): void {
    this.db.tx(() => {
      const result = this.db
        .prepare("UPDATE licenses SET expires_at = ?, updated_at = ? WHERE id = ? AND expires_at != ?")
        .run(expiresAt, Date.now(), id, expiresAt);
      if (Number(result.changes) === 1) this.events.record("renewed", id);
    });
  }

  private countBy(where: string): Map<number, number> {
    const rows = this.db
      .prepare(`SELECT chain_id, count(*) AS n FROM licenses WHERE ${where} GROUP BY chain_id`)
      .all();
    return new Map(rows.map((r) => [Number(r.chain_id), Number(r.n)]));
  }

  queueDepths(): Map<number, number> {
    return this.countBy("status IN ('accepted','submitted')");
  }

  confirmedCounts(): Map<number, number> {
    return this.countBy("status = 'confirmed'");
  }
}
