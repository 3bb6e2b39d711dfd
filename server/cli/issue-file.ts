/**
 * `license issue --file licensees.csv`: the HTTP edge. Sends the file's valid rows to
 * `POST /v1/licenses/batch` in chunks (within the item count and the body limit, adapting to the service's
 * answers), shows progress on stderr, and writes one result per data row to the results file.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { UsageError } from "./args.js";
import {
  chunks,
  defaultResultsFile,
  fileRows,
  FileFormatError,
  formatResults,
  type BulkItem,
  type Row,
  type RowDefaults,
  type RowResult,
} from "./file-rows.js";

/** The service's defaults for the bulk route: most items per request and its 1 MiB body limit. */
const BULK_MAX_ITEMS = 500;
const BULK_MAX_BYTES = 1024 * 1024 - 1024;
/** Retries of one request after a 5xx or a network error before the rest of the file is given up. */
const RETRIES = 3;

export interface IssueFileOptions {
  base: string;
  key: string;
  file: string;
  out?: string;
  chunkSize?: number;
  defaults: RowDefaults;
  json: boolean;
  /** Where progress goes (stderr); a progress bar when it is a TTY, plain lines otherwise. */
  progress: { write(text: string): unknown; isTTY?: boolean };
}

interface BulkReply {
  items: {
    index: number;
    status: number;
    replayed?: boolean;
    license?: { id: string; chainId: number };
    error?: { code: string; message: string };
  }[];
}

type Reply = { status: number; body: Record<string, unknown>; retryAfter: number };

/** Issues the file; the exit status: 0 every row issued (or replayed), 1 any row failed. */
export async function issueFile(o: IssueFileOptions): Promise<number> {
  let text: string;
  try {
    text = readFileSync(o.file, "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read --file ${o.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      "issue",
    );
  }
  let rows: Row[];
  try {
    rows = fileRows(text, o.defaults);
  } catch (error) {
    if (error instanceof FileFormatError) throw new UsageError(`${o.file} ${error.message}`, "issue");
    throw error;
  }
  const run = new FileRun(o, rows.length);
  for (const row of rows) if (row.error) run.fail(row, row.error.code, row.error.message);
  await run.send(rows.filter((r) => r.item !== undefined));
  run.report(true);

  const out = o.out ?? defaultResultsFile(o.file);
  const ordered = [...run.results.values()].sort((a, b) => a.line - b.line);
  writeFileSync(`${out}.tmp`, formatResults(ordered, out));
  renameSync(`${out}.tmp`, out);
  const counts = tally(ordered);
  const issued = counts.accepted + counts.replayed;
  if (o.json) console.log(JSON.stringify({ rows: rows.length, ...counts, results: out }));
  else
    console.log(
      counts.failed === 0
        ? `issued all ${rows.length} rows (accepted ${counts.accepted}, replayed ${counts.replayed}); results in ${out}`
        : `issued ${issued} of ${rows.length} rows (accepted ${counts.accepted}, replayed ${counts.replayed}); ${counts.failed} FAILED (see ${out})`,
    );
  return counts.failed === 0 ? 0 : 1;
}

/** One file's run: the results by line, the progress output, and the chunked sending. */
class FileRun {
  readonly results = new Map<number, RowResult>();
  /** A progress bar is drawn on the current line (a message first needs a line break). */
  private dirty = false;
  private lastLine = 0;

  constructor(
    private readonly o: IssueFileOptions,
    private readonly total: number,
  ) {}

  fail(row: Row, code: string, message: string, quiet = false): void {
    const { line, licensee, productId } = row;
    this.results.set(line, { line, licensee, productId, status: "failed", code, message });
    if (!quiet) this.say(`${this.o.file} line ${line}: ${code} ${message}`);
  }

  /** The progress: a bar redrawn in place on a TTY, else a plain line at most every 2 s (and the last). */
  report(final: boolean): void {
    const counts = tally(this.results.values());
    const done = this.results.size;
    const summary = `${done}/${this.total} rows (accepted ${counts.accepted}, replayed ${counts.replayed}, failed ${counts.failed})`;
    if (this.o.progress.isTTY) {
      this.o.progress.write(`\r${progressBar(done, this.total, 30)} ${summary}${final ? "\n" : ""}`);
      this.dirty = !final;
    } else if (final || Date.now() - this.lastLine >= 2000) {
      this.o.progress.write(`progress: ${summary}\n`);
      this.lastLine = Date.now();
    }
  }

  private say(line: string): void {
    this.o.progress.write(`${this.dirty ? "\n" : ""}${line}\n`);
    this.dirty = false;
  }

  /** Sends the rows in chunks, adapting the chunks to the service's answers, until each has its result. */
  async send(rows: Row[]): Promise<void> {
    let pending = rows;
    let maxItems = this.o.chunkSize ?? BULK_MAX_ITEMS;
    let maxBytes = BULK_MAX_BYTES;
    let retries = 0;
    while (pending.length > 0) {
      const size = chunks(
        pending.map((r) => r.item!),
        maxItems,
        maxBytes,
      )[0]!.length;
      const batch = pending.slice(0, size);
      const reply = await post(
        this.o,
        batch.map((r) => r.item!),
      );
      if (reply.status === 202) {
        retries = 0;
        this.settle(batch, reply.body as unknown as BulkReply);
        pending = pending.slice(batch.length);
        this.report(false);
        continue;
      }
      const code = String(reply.body.code ?? reply.status);
      const message = String(reply.body.message ?? "");
      const field = typeof reply.body.field === "string" ? reply.body.field : "";
      const item = /^items\.(\d+)(?:\.|$)/.exec(field);
      if (reply.status === 400 && item && batch[Number(item[1])]) {
        // all-or-nothing validation: this row is refused (an unknown product, say); the others go again
        const row = batch[Number(item[1])]!;
        const name = field.replace(/^items\.\d+\.?/, "");
        const text = message.replace(/^items\.\d+\./, "");
        this.fail(row, code, name && !text.startsWith(name) ? `${name}: ${text}` : text);
        pending = pending.filter((r) => r !== row);
      } else if (reply.status === 400 && field === "items" && atMost(message) < batch.length) {
        maxItems = atMost(message);
      } else if (reply.status === 413 && batch.length === 1) {
        this.fail(batch[0]!, code, message);
        pending = pending.slice(1);
      } else if (reply.status === 413) {
        maxItems = Math.max(1, Math.floor(batch.length / 2));
        maxBytes = Math.max(1024, Math.floor(maxBytes / 2));
      } else if (reply.status === 429) {
        // a bulk request costs one token per item: smaller chunks fit a smaller bucket
        maxItems = Math.max(1, Math.floor(batch.length / 2));
        const wait = Math.min(Math.max(reply.retryAfter, 1), 60);
        this.say(`rate limited: retrying in ${wait} s with chunks of ${maxItems}`);
        await sleep(wait * 1000);
      } else if ((reply.status >= 500 || reply.status === 0) && retries < RETRIES) {
        retries++;
        await sleep(500 * 2 ** retries);
      } else {
        // the request as such is refused (401, 403, the service gone): the rest is not sent
        this.say(`error ${reply.status || "(no answer)"} ${code}: ${message}`);
        for (const row of pending) this.fail(row, code, message, true);
        pending = [];
      }
    }
  }

  /** The results of an answered chunk: a license (new or replayed) or the item's own error. */
  private settle(batch: readonly Row[], reply: BulkReply): void {
    for (const item of reply.items) {
      const row = batch[item.index]!;
      if (!item.license) {
        this.fail(row, item.error?.code ?? String(item.status), item.error?.message ?? "");
        continue;
      }
      const { line, licensee, productId } = row;
      const status = item.replayed ? "replayed" : "accepted";
      this.results.set(line, {
        line,
        licensee,
        productId,
        status,
        licenseId: item.license.id,
        chainId: item.license.chainId,
      });
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function post(o: IssueFileOptions, items: BulkItem[]): Promise<Reply> {
  try {
    const res = await fetch(`${o.base}/v1/licenses/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${o.key}`, "content-type": "application/json" },
      body: JSON.stringify({ items }),
    });
    const text = await res.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { code: `HTTP_${res.status}`, message: text.slice(0, 200) };
    }
    return { status: res.status, body, retryAfter: Number(res.headers.get("retry-after") ?? 1) || 1 };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return {
      status: 0,
      body: { code: "UNREACHABLE", message: `${o.base}: ${cause?.code ?? cause?.message ?? String(error)}` },
      retryAfter: 1,
    };
  }
}

/** The item limit a `400` on `items` names ("at most 150 items per request"); Infinity if none. */
function atMost(message: string): number {
  const n = Number(/at most (\d+) items/.exec(message)?.[1]);
  return n >= 1 ? n : Infinity;
}

function tally(results: Iterable<RowResult>): { accepted: number; replayed: number; failed: number } {
  const counts = { accepted: 0, replayed: 0, failed: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

/** `[#########---------]`: `done` of `total` in `width` cells. */
export function progressBar(done: number, total: number, width: number): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}
