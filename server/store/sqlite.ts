/**
 * The SQLite connection the store's aggregates share: prepared statements (each SQL text prepared
 * once), `BEGIN IMMEDIATE` transactions, and the commit hook of the event outbox.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { applySchema } from "./schema.js";

export class SqliteDb {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  /** The open transaction wrote outbox events: `onEventsCommitted` runs after its commit. */
  private eventsWritten = false;
  /** Open `tx` calls (the outermost one owns BEGIN / COMMIT). */
  private depth = 0;

  constructor(
    file: string,
    /** Called after a transaction that wrote outbox events committed (wakes the publisher). */
    private readonly onEventsCommitted?: () => void,
  ) {
    this.db = new DatabaseSync(file);
    applySchema(this.db);
  }

  prepare(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Nesting: a `tx` inside another runs as part of the outer transaction. */
  tx<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    this.eventsWritten = false;
    let result: T;
    this.depth++;
    try {
      result = fn();
      this.db.exec("COMMIT");
    } catch (error) {
      this.eventsWritten = false;
      this.db.exec("ROLLBACK");
      throw error;
    } finally {
      this.depth--;
    }
    if (this.eventsWritten) {
      this.eventsWritten = false;
      this.onEventsCommitted?.();
    }
    return result;
  }

  /** The event outbox wrote a row in the current transaction. */
  eventWritten(): void {
    this.eventsWritten = true;
  }

  close(): void {
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}
