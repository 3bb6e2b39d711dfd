/**
 * The event outbox: each state change writes its lifecycle event (the license after the change) in
 * its own transaction; the publisher reads the unpublished rows and marks them once Kafka acknowledged.
 */
import { randomUUID } from "node:crypto";
import type { LicenseEvent, LicenseEventType, OutboxEvent } from "../domain.js";
import { outboxPayload } from "../events.js";
import { readLicense } from "./rows.js";
import type { SqliteDb } from "./sqlite.js";
import type { EventOutboxStore, StoreOptions } from "./types.js";

export class SqliteEventOutbox implements EventOutboxStore {
  constructor(
    private readonly db: SqliteDb,
    private readonly options: StoreOptions["events"],
  ) {}

  /** Events are recorded (the store was opened with an origin). */
  get enabled(): boolean {
    return this.options !== undefined;
  }

  /** Writes the event of a change to the outbox; called inside the change's transaction. */
  record(type: LicenseEventType, licenseId: string): void {
    const events = this.options;
    if (!events) return;
    const license = readLicense(this.db, licenseId)!;
    const id = randomUUID();
    const payload = outboxPayload(id, type, events.origin, license, events.contractOf(license.chainId));
    this.db
      .prepare("INSERT INTO events (id, license_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(id, licenseId, type, JSON.stringify(payload), Date.now());
    this.db.eventWritten();
  }

  unpublishedEvents(limit: number): OutboxEvent[] {
    return this.db
      .prepare("SELECT seq, license_id, payload FROM events WHERE published_at IS NULL ORDER BY seq LIMIT ?")
      .all(limit)
      .map((row) => ({
        seq: Number(row.seq),
        licenseId: row.license_id as string,
        event: {
          ...(JSON.parse(row.payload as string) as Omit<LicenseEvent, "sequence">),
          sequence: Number(row.seq),
        },
      }));
  }

  markPublished(seqs: number[]): void {
    if (seqs.length === 0) return;
    this.db.tx(() => {
      const update = this.db.prepare(
        "UPDATE events SET published_at = ? WHERE seq = ? AND published_at IS NULL",
      );
      const now = Date.now();
      for (const seq of seqs) update.run(now, seq);
    });
  }

  eventBacklog(): number {
    const row = this.db.prepare("SELECT count(*) AS n FROM events WHERE published_at IS NULL").get() as
      { n: number } | undefined;
    return Number(row?.n ?? 0);
  }
}
