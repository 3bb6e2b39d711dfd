/** Products: added from the config at start and through the admin API, never changed. */
import type { Product } from "../domain.js";
import { toProduct } from "./rows.js";
import type { SqliteDb } from "./sqlite.js";
import type { ProductStore } from "./types.js";

export class SqliteProducts implements ProductStore {
  constructor(private readonly db: SqliteDb) {}

  products(): Product[] {
    return this.db.prepare("SELECT * FROM products ORDER BY id").all().map(toProduct);
  }

  getProduct(id: number): Product | undefined {
    const row = this.db.prepare("SELECT * FROM products WHERE id = ?").get(id);
    return row ? toProduct(row) : undefined;
  }

  addProduct(product: Product): boolean {
    const result = this.db
      .prepare("INSERT OR IGNORE INTO products (id, name, default_duration, chains) VALUES (?, ?, ?, ?)")
      .run(
        product.id,
        product.name,
        product.defaultDurationSeconds,
        product.chains ? JSON.stringify(product.chains) : null,
      );
    return Number(result.changes) === 1;
  }
}
