import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, encryptKeystoreJsonSync } from "ethers";
import { loadSignerKey } from "../../server/chain.js";
import type { ResolvedChain } from "../../server/config.js";
import { AppError } from "../../server/errors.js";
import { tempDir } from "./helpers.js";

function chain(signer: ResolvedChain["signer"]): ResolvedChain {
  return {
    name: "a",
    chainId: 1,
    rpcUrl: "http://127.0.0.1:1",
    contract: "0x" + "11".repeat(20),
    signer,
    weight: 1,
    confirmations: 1,
    enabled: true,
    issueGasPerLicense: 1,
    maxTxGas: 16_777_216,
  };
}

describe("server: signer keys", function () {
  const wallet = Wallet.createRandom();

  it("reads the key from the named environment variable, and names the field when it is missing", async function () {
    expect(await loadSignerKey(chain({ env: "K" }), { K: wallet.privateKey })).to.equal(wallet.privateKey);
    try {
      await loadSignerKey(chain({ env: "K" }), {});
      expect.fail("should throw");
    } catch (error) {
      expect(error).to.be.instanceOf(AppError);
      expect((error as AppError).field).to.equal("signer.env");
      expect((error as AppError).message).to.not.contain(wallet.privateKey);
    }
  });

  it("decrypts a keystore file with the password from the environment", async function () {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, "key.json");
      const json = encryptKeystoreJsonSync({ address: wallet.address, privateKey: wallet.privateKey }, "pw", {
        scrypt: { N: 1 << 10 },
      });
      writeFileSync(file, json);
      expect(await loadSignerKey(chain({ keystore: file, passwordEnv: "PW" }), { PW: "pw" })).to.equal(
        wallet.privateKey,
      );
      let failed: unknown;
      await loadSignerKey(chain({ keystore: file, passwordEnv: "PW" }), { PW: "wrong" }).catch(
        (e: unknown) => (failed = e),
      );
      expect(failed).to.be.instanceOf(Error);
    } finally {
      tmp.cleanup();
    }
  });
});
