/**
 * The pure parts of the licensing CLI: the CSV reader, the file's rows as bulk items (line numbers,
 * idempotency keys), the chunking within the bulk limits, the results file, and the strict flag parsing.
 */
import { expect } from "chai";
import { parseCommandLine, UsageError, int } from "../../server/cli/args.js";
import { csvLine, parseCsv } from "../../server/cli/csv.js";
import {
  chunks,
  defaultResultsFile,
  fileRows,
  FileFormatError,
  formatResults,
} from "../../server/cli/file-rows.js";
import { progressBar } from "../../server/cli/issue-file.js";
import { run } from "../../server/cli.js";

const A = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

describe("license CLI: CSV reader (RFC 4180)", () => {
  it("reads fields, quoted fields with commas, doubled quotes and line breaks, and keeps line numbers", () => {
    const text = 'a,b,c\r\n1,"x, y",3\r\n"say ""hi""","two\r\nlines",\r\nlast,"",z';
    expect(parseCsv(text)).to.deep.equal([
      { line: 1, fields: ["a", "b", "c"] },
      { line: 2, fields: ["1", "x, y", "3"] },
      { line: 3, fields: ['say "hi"', "two\r\nlines", ""] },
      { line: 5, fields: ["last", "", "z"] },
    ]);
  });

  it("takes LF and CRLF alike, drops a BOM, skips blank lines (their numbers still count)", () => {
    const text = "\uFEFFh1,h2\n\n1,2\r\n   \r\n3,4\n\n";
    expect(parseCsv(text)).to.deep.equal([
      { line: 1, fields: ["h1", "h2"] },
      { line: 3, fields: ["1", "2"] },
      { line: 5, fields: ["3", "4"] },
    ]);
    expect(parseCsv("")).to.deep.equal([]);
  });

  it("reports a stray quote or text after a closing quote on its line and reads on; an open quote to the end", () => {
    const records = parseCsv('h\nab"c,1\n"x"y,2\nok,3\n"never closed,4\nmore\n');
    expect(records.map((r) => [r.line, r.error === undefined ? r.fields : "error"])).to.deep.equal([
      [1, ["h"]],
      [2, "error"],
      [3, "error"],
      [4, ["ok", "3"]],
      [5, "error"],
    ]);
    expect(records[1]!.error).to.match(/quote inside an unquoted field/);
    expect(records[2]!.error).to.match(/after the closing quote/);
    expect(records[4]!.error).to.match(/not closed/);
  });

  it("writes what it reads (csvLine quotes only where needed)", () => {
    const values = ["plain", "a,b", 'q"q', "two\nlines", " edge", ""];
    expect(csvLine(values)).to.equal('plain,"a,b","q""q","two\nlines"," edge",\r\n');
    expect(parseCsv(csvLine(values))[0]!.fields).to.deep.equal(values);
  });
});

describe("license CLI: the licensee file's rows", () => {
  it("turns rows into bulk items with the request schema's checks, each error on its own line", () => {
    const text = [
      "Licensee,product_id,seats,duration",
      `${A},1,,`,
      `${B},2,5,3600`,
      `0x12,1,,`,
      `${A},abc,,`,
      `${A},1`,
      `${A},1,0,`,
      `"${A}",1,2,60`,
    ].join("\n");
    const rows = fileRows(text);
    expect(rows.map((r) => r.line)).to.deep.equal([2, 3, 4, 5, 6, 7, 8]);
    expect(rows[0]!.item).to.deep.include({ productId: 1, licensee: A });
    expect(rows[0]!.item).to.not.have.any.keys("seats", "durationSeconds");
    expect(rows[1]!.item).to.deep.include({ productId: 2, licensee: B, seats: 5, durationSeconds: 3600 });
    expect(rows[6]!.item).to.deep.include({ seats: 2, durationSeconds: 60 });
    const errors = rows.map((r) => r.error?.message);
    expect(errors[2]).to.match(/^licensee: must be an EVM address/);
    expect(errors[3]).to.equal("productId: must be a whole number, got 'abc'");
    expect(errors[4]).to.equal("2 fields, the header has 4");
    expect(errors[5]).to.match(/^seats: /);
    expect(rows.filter((r) => r.error).every((r) => r.error!.code === "VALIDATION_FAILED")).to.equal(true);
    expect(rows[3]).to.deep.include({ licensee: A, productId: "abc" });
  });

  it("derives every row's idempotency key from the file's content and the row's line", () => {
    const text = `licensee,productId\n${A},1\n${A},1\n`;
    const keys = fileRows(text).map((r) => r.item!.idempotencyKey);
    expect(keys[0]).to.match(/^csv-[0-9a-f]{24}-2$/);
    expect(keys[1]).to.equal(keys[0]!.replace(/-2$/, "-3"));
    expect(fileRows(text).map((r) => r.item!.idempotencyKey)).to.deep.equal(keys);
    expect(fileRows(`${text}${B},1\n`)[0]!.item!.idempotencyKey).to.not.equal(keys[0]);
  });

  it("fills empty cells from the defaults; a cell wins over a default", () => {
    const rows = fileRows(`licensee,productId,chain\n${A},1,\n${A},1,31338\n${A},1,dc-b\n`, {
      seats: 3,
      chain: "chain-a",
    });
    expect(rows.map((r) => [r.item!.seats, r.item!.chain])).to.deep.equal([
      [3, "chain-a"],
      [3, 31338],
      [3, "dc-b"],
    ]);
  });

  it("refuses a file without a usable header as a whole", () => {
    expect(() => fileRows("")).to.throw(FileFormatError, /empty/);
    expect(() => fileRows(`licensee,product,colour\n${A},1,red\n`)).to.throw(
      FileFormatError,
      /unknown column 'colour'/,
    );
    expect(() => fileRows(`licensee\n${A}\n`)).to.throw(FileFormatError, /'productId' is required/);
    expect(() => fileRows(`licensee,product,productId\n`)).to.throw(FileFormatError, /repeats/);
  });

  it("chunks within the item count and the byte limit, in order, nothing lost", () => {
    const items = Array.from({ length: 23 }, (_, i) => ({ n: i, pad: "x".repeat(90) }));
    const byCount = chunks(items, 10, 1 << 20);
    expect(byCount.map((c) => c.length)).to.deep.equal([10, 10, 3]);
    const byBytes = chunks(items, 500, 1000);
    for (const c of byBytes) expect(Buffer.byteLength(JSON.stringify({ items: c }))).to.be.at.most(1000);
    expect(byBytes.flat()).to.deep.equal(items);
    expect(byBytes.length).to.be.greaterThan(2);
    expect(chunks([{ big: "y".repeat(5000) }], 10, 1000)).to.have.length(1);
    expect(chunks([], 10, 1000)).to.deep.equal([]);
  });

  it("writes the results as CSV (default next to the input) or JSON lines", () => {
    const results = [
      {
        line: 2,
        licensee: A,
        productId: "1",
        status: "accepted" as const,
        licenseId: "id-1",
        chainId: 31337,
      },
      {
        line: 4,
        licensee: "0x12",
        productId: "1",
        status: "failed" as const,
        code: "VALIDATION_FAILED",
        message: "licensee: bad, really",
      },
    ];
    expect(defaultResultsFile("/tmp/x/licensees.csv")).to.equal("/tmp/x/licensees.results.csv");
    expect(defaultResultsFile("list.txt")).to.equal("list.txt.results.csv");
    const csv = parseCsv(formatResults(results, "out.csv"));
    expect(csv.map((r) => r.fields)).to.deep.equal([
      ["line", "licensee", "productId", "status", "licenseId", "chainId", "code", "message"],
      ["2", A, "1", "accepted", "id-1", "31337", "", ""],
      ["4", "0x12", "1", "failed", "", "", "VALIDATION_FAILED", "licensee: bad, really"],
    ]);
    const jsonl = formatResults(results, "out.jsonl")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as unknown);
    expect(jsonl).to.deep.equal(results);
  });

  it("draws the progress bar", () => {
    expect(progressBar(0, 10, 10)).to.equal("[----------]");
    expect(progressBar(5, 10, 10)).to.equal("[#####-----]");
    expect(progressBar(10, 10, 4)).to.equal("[####]");
    expect(progressBar(0, 0, 4)).to.equal("[####]");
  });
});

describe("license CLI: strict flags", () => {
  const usage = (argv: string[]): string => {
    try {
      parseCommandLine(argv);
    } catch (error) {
      expect(error).to.be.instanceOf(UsageError);
      return (error as Error).message;
    }
    throw new Error(`no usage error for ${argv.join(" ")}`);
  };

  it("finds the command, its id and its flags wherever the global flags stand", () => {
    expect(parseCommandLine(["--url", "http://x", "get", "abc", "--json"])).to.deep.equal({
      command: "get",
      id: "abc",
      values: { url: "http://x", json: true },
    });
    const issue = parseCommandLine(["issue", "--product", "7", "--licensee", A, "--wait"]);
    expect(issue.values).to.deep.equal({ product: "7", licensee: A, wait: true });
    expect(int(issue.values, "product", "issue")).to.equal(7);
    expect(parseCommandLine(["issue", "--help"]).values.help).to.equal(true);
    expect(parseCommandLine(["-h"])).to.deep.equal({ values: { help: true } });
  });

  it("names the flag of every mistake in one line", () => {
    expect(usage(["issue", "--bogus"])).to.equal("unknown flag --bogus");
    expect(usage(["list", "--wait"])).to.equal("unknown flag --wait for 'list'");
    expect(usage(["issue", "--product"])).to.equal("--product needs a value");
    expect(usage(["chains", "--json=yes"])).to.equal("--json takes no value");
    expect(usage(["issue", "--seats", "1", "--seats", "2"])).to.equal("--seats is given twice");
    expect(usage(["get"])).to.equal("'get' needs a license id");
    expect(usage(["get", "a", "b"])).to.equal("unexpected argument 'b' for 'get'");
    expect(usage(["launch"])).to.match(/^unknown command 'launch'/);
    for (const message of [usage(["issue", "--bogus"]), usage(["issue", "--product"])])
      expect(message).to.not.contain("\n");
  });

  it("refuses a non-number where a number belongs", () => {
    const values = parseCommandLine([
      "issue",
      "--product",
      "abc",
      "--seats",
      "0",
      "--duration",
      "1.5",
    ]).values;
    expect(() => int(values, "product", "issue")).to.throw(
      UsageError,
      "--product must be a whole number >= 1, got 'abc'",
    );
    expect(() => int(values, "seats", "issue")).to.throw(
      UsageError,
      "--seats must be a whole number >= 1, got '0'",
    );
    expect(() => int(values, "duration", "issue")).to.throw(UsageError, /--duration .* got '1\.5'/);
    expect(int(values, "limit", "issue")).to.equal(undefined);
  });

  it("run(): usage errors exit 2 with one line on stderr, before any request (the URL is never reached)", async () => {
    const env = { LICENSE_API_KEY: "k", LICENSE_API_URL: "http://127.0.0.1:9" };
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => lines.push(args.join(" "));
    try {
      const cases: [string[], string][] = [
        [["issue", "--file", "x.csv", "--product", "1"], "--file cannot be combined with --product"],
        [["issue", "--product", "1", "--licensee", A, "--out", "r.csv"], "--out goes with --file"],
        [
          ["issue", "--file", "x.csv", "--chunk-size", "0"],
          "--chunk-size must be a whole number >= 1, got '0'",
        ],
        [["renew", "0193c1c2-0000-7000-8000-000000000000"], "'renew' needs --duration"],
        [
          ["list", "--status", "gone"],
          "--status must be one of accepted, submitted, confirmed, failed, got 'gone'",
        ],
        [["issue", "--product", "abc", "--licensee", A], "--product must be a whole number >= 1, got 'abc'"],
      ];
      for (const [argv, message] of cases) {
        lines.length = 0;
        expect(await run(argv, env), argv.join(" ")).to.equal(2);
        expect(lines).to.have.length(1);
        expect(lines[0])
          .to.contain(message)
          .and.match(/^license: .* \(see 'license \w+ --help'\)$/);
      }
    } finally {
      console.error = original;
    }
  });
});
