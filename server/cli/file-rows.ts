/**
 * The pure half of `license issue --file`: the CSV's header and rows turned into bulk items (checked with
 * the API's own request schema), their deterministic idempotency keys, the chunks sent per request, and
 * the results file (CSV or JSON lines).
 */
import { createHash } from "node:crypto";
import { AppError } from "../errors.js";
import { bulkItem, parse } from "../requests.js";
import { csvLine, parseCsv } from "./csv.js";

/** The columns a file may have (header names, case and `_`/`-` ignored) and the request field of each. */
const COLUMNS: Record<string, Field> = {
  licensee: "licensee",
  address: "licensee",
  productid: "productId",
  product: "productId",
  seats: "seats",
  durationseconds: "durationSeconds",
  duration: "durationSeconds",
  chain: "chain",
};
type Field = "licensee" | "productId" | "seats" | "durationSeconds" | "chain";
const NUMERIC = new Set<Field>(["productId", "seats", "durationSeconds"]);

/** Defaults for the cells a row leaves empty (from `--seats`, `--duration`, `--chain`). */
export interface RowDefaults {
  seats?: number;
  durationSeconds?: number;
  chain?: number | string;
}

export interface BulkItem {
  productId: number;
  licensee: string;
  seats?: number;
  durationSeconds?: number;
  chain?: number | string;
  idempotencyKey: string;
}

/** A data row: its line, the cells as written (for the results file), and its item or its error. */
export interface Row {
  line: number;
  licensee: string;
  productId: string;
  item?: BulkItem;
  error?: { code: string; message: string };
}

/** A file that cannot be read as a whole (no header, an unknown or missing column). */
export class FileFormatError extends Error {}

/**
 * The rows of a licensee file. Every row gets the idempotency key `csv-<file hash>-<line>`: the same file
 * issued again (after a crash, or twice) replays instead of issuing anew.
 */
export function fileRows(text: string, defaults: RowDefaults = {}): Row[] {
  const records = parseCsv(text);
  const header = records.shift();
  if (!header) throw new FileFormatError("the file is empty (a header row is required)");
  if (header.error) throw new FileFormatError(`line ${header.line} (header): ${header.error}`);
  const fields = header.fields.map((name) => {
    const field = COLUMNS[name.trim().toLowerCase().replace(/[-_ ]/g, "")];
    if (!field)
      throw new FileFormatError(
        `line ${header.line} (header): unknown column '${name}' (columns: licensee, productId, seats, durationSeconds, chain)`,
      );
    return field;
  });
  for (const required of ["licensee", "productId"] as const) {
    if (!fields.includes(required))
      throw new FileFormatError(`line ${header.line} (header): the column '${required}' is required`);
  }
  const repeated = fields.find((f, i) => fields.indexOf(f) !== i);
  if (repeated) throw new FileFormatError(`line ${header.line} (header): the column '${repeated}' repeats`);

  const fileHash = createHash("sha256").update(text).digest("hex").slice(0, 24);
  return records.map((record): Row => {
    const cell = (f: Field): string => record.fields[fields.indexOf(f)]?.trim() ?? "";
    const row: Row = { line: record.line, licensee: cell("licensee"), productId: cell("productId") };
    const fail = (message: string): Row => ({ ...row, error: { code: "VALIDATION_FAILED", message } });
    if (record.error) return fail(record.error);
    if (record.fields.length !== fields.length)
      return fail(`${record.fields.length} fields, the header has ${fields.length}`);
    const body: Record<string, unknown> = { ...defaults };
    for (const f of fields) {
      const raw = cell(f);
      if (raw === "") continue;
      if (NUMERIC.has(f)) {
        if (!/^\d{1,15}$/.test(raw)) return fail(`${f}: must be a whole number, got '${raw}'`);
        body[f] = Number(raw);
      } else if (f === "chain") body[f] = /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
      else body[f] = raw;
    }
    body.idempotencyKey = `csv-${fileHash}-${record.line}`;
    try {
      return { ...row, item: parse(bulkItem, body) as BulkItem };
    } catch (error) {
      return fail(error instanceof AppError ? error.message : String(error));
    }
  });
}

/**
 * Splits items into request bodies of at most `maxItems` items and `maxBytes` bytes of JSON each (an
 * item alone over `maxBytes` still gets its own chunk: the service answers it, the CLI does not guess).
 */
export function chunks<T>(items: readonly T[], maxItems: number, maxBytes: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = '{"items":[]}'.length;
  for (const item of items) {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = '{"items":[]}'.length;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** The outcome of one row, as the results file has it. */
export interface RowResult {
  line: number;
  licensee: string;
  productId: string;
  status: "accepted" | "replayed" | "failed";
  licenseId?: string;
  chainId?: number;
  code?: string;
  message?: string;
}

export const RESULT_COLUMNS = [
  "line",
  "licensee",
  "productId",
  "status",
  "licenseId",
  "chainId",
  "code",
  "message",
] as const;

/** The results file: JSON lines when `file` ends in `.jsonl`/`.ndjson`, else CSV with a header. */
export function formatResults(results: readonly RowResult[], file: string): string {
  if (/\.(jsonl|ndjson)$/i.test(file)) return results.map((r) => `${JSON.stringify(r)}\n`).join("");
  return (
    csvLine(RESULT_COLUMNS) +
    results.map((r) => csvLine(RESULT_COLUMNS.map((c) => (r[c] === undefined ? "" : String(r[c]))))).join("")
  );
}

/** The default results file: `<input without .csv>.results.csv`, next to the input. */
export function defaultResultsFile(input: string): string {
  return `${input.replace(/\.csv$/i, "")}.results.csv`;
}
