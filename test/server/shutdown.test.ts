/**
 * Shutdown of the server process (`server/main.ts`): a stop that fails on SIGTERM is logged (with the
 * error's fields) and the process exits 1. The store's close is made to throw by a preloaded module;
 * the chain is unreachable on purpose (the server starts regardless, the chain marked down).
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import { sha256Hex } from "../../server/config.js";
import { KEYS, startServer, tempDir } from "./helpers.js";

describe("server: shutdown", function () {
  this.timeout(60_000);

  it("logs a failed stop with its error fields and exits 1", async function () {
    const tmp = tempDir();
    try {
      const configFile = path.join(tmp.dir, "config.json");
      writeFileSync(
        configFile,
        JSON.stringify({
          database: { path: path.join(tmp.dir, "db.sqlite") },
          chains: [
            {
              name: "down",
              chainId: 31337,
              rpcUrl: "http://127.0.0.1:1",
              contract: "0x" + "11".repeat(20),
              signer: { env: "SHUTDOWN_TEST_SIGNER" },
            },
          ],
          apiKeys: [{ id: "admin", sha256: sha256Hex(KEYS.admin), scopes: ["admin"] }],
        }),
      );
      const env = { SHUTDOWN_TEST_SIGNER: Wallet.createRandom().privateKey };
      const { child } = await startServer(configFile, env, [
        "--import",
        "./test/server/fixtures/store-close-fails.ts",
      ]);
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      // "close", not "exit": the last stdout chunk (the log line) may arrive after the exit
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      child.kill("SIGTERM");
      const code = await exited;
      const lines = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { msg?: string; err?: { message?: string } });
      const failed = lines.find((line) => line.msg === "shutdown failed");
      expect(failed?.err, "the failed stop is logged with its error fields").to.deep.include({
        message: "store close failed (test)",
      });
      expect(code, "exit code").to.equal(1);
    } finally {
      tmp.cleanup();
    }
  });
});
