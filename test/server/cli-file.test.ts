/**
 * The licensing CLI as its own process against the real service on the three shared chains (signer: dev
 * account 17, fresh contracts): `issue --file` issues a licensee CSV through the bulk endpoint, reports the
 * malformed rows by line number and loses nothing else, and a re-run of the same file replays; flag
 * mistakes are usage errors (exit status 2) naming the flag.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import request from "supertest";
import { getChains } from "../fixtures/infra.js";
import { listen, type Runtime } from "../../server/index.js";
import { parseCsv } from "../../server/cli/csv.js";
import {
  KEYS,
  auth,
  deployOnChains,
  devKey,
  mintedCount,
  randomAddress,
  sleep,
  startRuntime,
  tempDir,
  testConfig,
  type TestChain,
} from "./helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SIGNER = devKey(17);

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  const child = spawn(process.execPath, ["--import", "tsx", "server/cli.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`CLI did not finish\n${stderr}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      // the pipes may still hold the last output
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

describe("server: the licensing CLI as a process (issue --file, strict flags)", function () {
  this.timeout(180_000);
  let runtime: Runtime;
  let chains: TestChain[];
  let tmp: ReturnType<typeof tempDir>;
  let server: Server;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    chains = await deployOnChains((await getChains()).chains, SIGNER);
    tmp = tempDir();
    // a small item limit: the CLI learns it from the service's answer and sends smaller chunks
    runtime = await startRuntime(
      testConfig(chains, {
        dbPath: path.join(tmp.dir, "db.sqlite"),
        bulk: { maxItems: 6, bodyLimitBytes: 64 * 1024 },
      }),
      SIGNER,
    );
    const listening = await listen(runtime.app, 0);
    server = listening.server;
    env = { LICENSE_API_KEY: KEYS.client, LICENSE_API_URL: `http://127.0.0.1:${listening.port}` };
  });

  after(async function () {
    server?.closeAllConnections();
    server?.close();
    await runtime?.stop();
    tmp?.cleanup();
  });

  it("issues a 32-row file: 28 licenses once each, the 4 malformed rows reported by line; a re-run replays", async function () {
    // line 1 is the header; data rows from line 2, with a blank line and a quoted field among them
    const lines: string[] = ["\uFEFFlicensee,productId,seats,durationSeconds"];
    const good = new Map<number, string>(); // line -> licensee
    const bad = new Map<number, RegExp>(); // line -> the error expected
    for (let i = 0; i < 32; i++) {
      const licensee = randomAddress();
      const line = lines.length + 1;
      if (i === 3) {
        lines.push(`0x1234,1,,`);
        bad.set(line, /^licensee: must be an EVM address/);
      } else if (i === 10) {
        lines.push(`${licensee},1,two,`);
        bad.set(line, /^seats: must be a whole number, got 'two'$/);
      } else if (i === 17) {
        lines.push(`${licensee},1`);
        bad.set(line, /^2 fields, the header has 4$/);
      } else if (i === 25) {
        lines.push(`${licensee},99,,`);
        bad.set(line, /^productId: unknown product 99$/);
      } else {
        lines.push(i === 5 ? `"${licensee}",1,"2",3600` : `${licensee},${i % 7 === 0 ? 2 : 1},,`);
        good.set(line, licensee);
      }
      if (i === 12) lines.push("");
    }
    const file = path.join(tmp.dir, "licensees.csv");
    writeFileSync(file, `${lines.join("\r\n")}\r\n`);
    const resultsFile = path.join(tmp.dir, "licensees.results.csv");

    const first = await runCli(["issue", "--file", file], env);
    expect(first.code, first.stderr).to.equal(1);
    expect(first.stdout.trim()).to.equal(
      `issued 28 of 32 rows (accepted 28, replayed 0); 4 FAILED (see ${resultsFile})`,
    );
    for (const [line] of bad)
      expect(first.stderr).to.match(new RegExp(`licensees\\.csv line ${line}: VALIDATION_FAILED `));
    expect(first.stderr).to.contain("progress: 32/32 rows (accepted 28, replayed 0, failed 4)");
    expect(first.stderr).to.not.match(/\n\s+at /); // no stack trace

    const results = (): Record<string, string>[] => {
      const [header, ...records] = parseCsv(readFileSync(resultsFile, "utf8"));
      return records.map((r) => Object.fromEntries(header!.fields.map((name, i) => [name, r.fields[i]!])));
    };
    const firstResults = results();
    expect(firstResults.map((r) => Number(r.line))).to.deep.equal(
      [...good.keys(), ...bad.keys()].sort((a, b) => a - b),
    );
    for (const r of firstResults) {
      const line = Number(r.line);
      if (bad.has(line)) {
        expect([r.status, r.code, r.licenseId], `line ${line}`).to.deep.equal([
          "failed",
          "VALIDATION_FAILED",
          "",
        ]);
        expect(r.message).to.match(bad.get(line)!);
      } else {
        expect([r.status, r.licensee], `line ${line}`).to.deep.equal(["accepted", good.get(line)]);
        expect(r.licenseId).to.match(/^[0-9a-f-]{36}$/);
      }
    }

    // through the API: each license exists once, for its row's licensee; and all 28 get minted on-chain
    const issued = firstResults.filter((r) => r.status === "accepted");
    expect(new Set(issued.map((r) => r.licenseId)).size).to.equal(28);
    for (const r of issued) {
      const got = await request(runtime.app)
        .get(`/v1/licenses/${r.licenseId}`)
        .set(...auth(KEYS.client));
      expect([got.status, got.body.licensee.toLowerCase(), String(got.body.productId)]).to.deep.equal([
        200,
        r.licensee!.toLowerCase(),
        r.productId,
      ]);
      const listed = await request(runtime.app)
        .get(`/v1/licenses?licensee=${r.licensee}`)
        .set(...auth(KEYS.client));
      expect(listed.body.items.map((l: { id: string }) => l.id)).to.deep.equal([r.licenseId]);
    }
    const line7 = issued.find((r) => r.line === "7")!; // the quoted row with seats and a duration
    const seven = await request(runtime.app)
      .get(`/v1/licenses/${line7.licenseId}`)
      .set(...auth(KEYS.client));
    expect(seven.body.seats).to.equal(2);
    const minted = async (): Promise<number> => {
      let total = 0;
      for (const c of chains) total += await mintedCount(c.rpcUrl, c.contract);
      return total;
    };
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await minted()) < 28) await sleep(200);
    expect(await minted()).to.equal(28);

    // the same file again: every row replays (same license ids), nothing new is issued
    const second = await runCli(["issue", "--file", file], env);
    expect(second.code, second.stderr).to.equal(1);
    expect(second.stdout.trim()).to.equal(
      `issued 28 of 32 rows (accepted 0, replayed 28); 4 FAILED (see ${resultsFile})`,
    );
    const secondResults = results();
    expect(secondResults.map((r) => [r.line, r.licenseId])).to.deep.equal(
      firstResults.map((r) => [r.line, r.licenseId]),
    );
    expect(secondResults.filter((r) => r.status === "replayed")).to.have.length(28);
    expect(runtime.store.listLicenses({ limit: 1000 }).items).to.have.length(28);
    await sleep(500);
    expect(await minted()).to.equal(28);
  });

  it("issues a clean file with exit status 0 and writes JSON lines to --out", async function () {
    const file = path.join(tmp.dir, "clean.csv");
    writeFileSync(file, `licensee,product\n${randomAddress()},1\n${randomAddress()},2\n`);
    const out = path.join(tmp.dir, "clean-out.jsonl");
    const run = await runCli(["issue", "--file", file, "--out", out, "--seats", "4"], env);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout.trim()).to.equal(`issued all 2 rows (accepted 2, replayed 0); results in ${out}`);
    const rows = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { line: number; status: string; licenseId: string });
    expect(rows.map((r) => [r.line, r.status])).to.deep.equal([
      [2, "accepted"],
      [3, "accepted"],
    ]);
    const got = await request(runtime.app)
      .get(`/v1/licenses/${rows[0]!.licenseId}`)
      .set(...auth(KEYS.client));
    expect(got.body.seats).to.equal(4);
    // again, with --json: one summary line; both rows replay
    const again = await runCli(["issue", "--file", file, "--out", out, "--seats", "4", "--json"], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(JSON.parse(again.stdout)).to.deep.equal({
      rows: 2,
      accepted: 0,
      replayed: 2,
      failed: 0,
      results: out,
    });
  });

  it("retries a service it cannot reach, then reports every row failed (UNREACHABLE), exit 1", async function () {
    const gone = await listen(runtime.app, 0);
    gone.server.close();
    const file = path.join(tmp.dir, "unreachable.csv");
    writeFileSync(file, `licensee,productId\n${randomAddress()},1\n`);
    const run = await runCli(["issue", "--file", file], {
      ...env,
      LICENSE_API_URL: `http://127.0.0.1:${gone.port}`,
    });
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stderr).to.match(
      /^error \(no answer\) UNREACHABLE: http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/m,
    );
    const results = parseCsv(readFileSync(path.join(tmp.dir, "unreachable.results.csv"), "utf8"));
    expect(results.slice(1).map((r) => [r.fields[0], r.fields[3], r.fields[6]])).to.deep.equal([
      ["2", "failed", "UNREACHABLE"],
    ]);
  });

  it("gives up a file the service refuses as such (a wrong key): every row failed, one error line", async function () {
    const file = path.join(tmp.dir, "refused.csv");
    writeFileSync(file, `licensee,productId\n${randomAddress()},1\n${randomAddress()},1\n`);
    const run = await runCli(["issue", "--file", file], { ...env, LICENSE_API_KEY: "not-a-key-0123456789" });
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stdout.trim()).to.match(/^issued 0 of 2 rows \(accepted 0, replayed 0\); 2 FAILED/);
    expect(run.stderr).to.match(/^error 401 UNAUTHENTICATED: /m);
    const results = parseCsv(readFileSync(path.join(tmp.dir, "refused.results.csv"), "utf8"));
    expect(results.slice(1).map((r) => [r.fields[0], r.fields[3], r.fields[6]])).to.deep.equal([
      ["2", "failed", "UNAUTHENTICATED"],
      ["3", "failed", "UNAUTHENTICATED"],
    ]);
  });

  it("draws a progress bar when stderr is a terminal (under script(1)'s pseudo-terminal)", async function () {
    const file = path.join(tmp.dir, "tty.csv");
    writeFileSync(file, `licensee,productId\n${randomAddress()},1\n${randomAddress()},1\n0x12,1\n`);
    const command = [process.execPath, "--import", "tsx", "server/cli.ts", "issue", "--file", file].join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, output).to.equal(1);
    expect(output).to.contain(
      "\r[##############################] 3/3 rows (accepted 2, replayed 0, failed 1)\r\n",
    );
    expect(output).to.match(/tty\.csv line 4: VALIDATION_FAILED licensee: /);
    expect(output).to.not.contain("progress:");
  });

  it("refuses flag mistakes with exit status 2 and one line naming the flag, before any request", async function () {
    const before = runtime.store.listLicenses({ limit: 1000 }).items.length;
    const cases: [string[], string][] = [
      [
        ["issue", "--product", "abc", "--licensee", randomAddress()],
        "--product must be a whole number >= 1, got 'abc'",
      ],
      [
        ["issue", "--product", "1", "--licensee", randomAddress(), "--colour", "red"],
        "unknown flag --colour",
      ],
      [["issue", "--licensee", randomAddress()], "'issue' needs --product"],
      [["list", "--limit", "ten"], "--limit must be a whole number >= 1, got 'ten'"],
      [["issue", "--file", path.join(tmp.dir, "missing.csv")], "cannot read --file"],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args, env);
      expect(run.code, args.join(" ")).to.equal(2);
      expect(run.stderr.trim().split("\n"), args.join(" ")).to.have.length(1);
      expect(run.stderr).to.contain(message);
    }
    expect(runtime.store.listLicenses({ limit: 1000 }).items.length).to.equal(before);
  });
});

describe("server: the licensing CLI's issue --file under a tight rate limit", function () {
  this.timeout(180_000);
  let runtime: Runtime;
  let tmp: ReturnType<typeof tempDir>;
  let server: Server;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    const chains = await deployOnChains((await getChains()).chains, devKey(18));
    tmp = tempDir();
    // a bucket of 8 tokens (4 a second): a bulk request of 20 items (20 tokens) can never pass as it is
    runtime = await startRuntime(
      testConfig(chains, {
        dbPath: path.join(tmp.dir, "db.sqlite"),
        rateLimit: { perSecond: 4, burst: 8 },
      }),
      devKey(18),
    );
    const listening = await listen(runtime.app, 0);
    server = listening.server;
    env = { LICENSE_API_KEY: KEYS.client, LICENSE_API_URL: `http://127.0.0.1:${listening.port}` };
  });

  after(async function () {
    server?.closeAllConnections();
    server?.close();
    await runtime?.stop();
    tmp?.cleanup();
  });

  it("waits out each 429 with smaller chunks and issues every row once", async function () {
    const licensees = Array.from({ length: 20 }, () => randomAddress());
    const file = path.join(tmp.dir, "many.csv");
    writeFileSync(file, `licensee,productId\n${licensees.map((l) => `${l},1`).join("\n")}\n`);
    const run = await runCli(["issue", "--file", file], env);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout.trim()).to.match(/^issued all 20 rows \(accepted 20, replayed 0\)/);
    expect(run.stderr).to.match(/rate limited: retrying in \d+ s with chunks of 10/);
    const stored = runtime.store.listLicenses({ limit: 1000 }).items;
    expect(stored.map((l) => l.licensee.toLowerCase()).sort()).to.deep.equal(
      licensees.map((l) => l.toLowerCase()).sort(),
    );
  });
});
