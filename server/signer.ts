/** The signer of a chain: its key from the environment or an encrypted keystore file. */
import { readFileSync } from "node:fs";
import { Wallet } from "ethers";
import type { ResolvedChain } from "./config.js";
import { AppError } from "./errors.js";

/** The signer key from the environment or a keystore file; never logged. */
export async function loadSignerKey(chain: ResolvedChain, env: NodeJS.ProcessEnv): Promise<string> {
  if (!chain.signer)
    throw new AppError("CONFIG_INVALID", `chain ${chain.name} has no signer`, { field: "signer" });
  if ("env" in chain.signer) {
    const key = env[chain.signer.env];
    if (!key)
      throw new AppError("CONFIG_INVALID", `environment variable ${chain.signer.env} is not set`, {
        field: "signer.env",
      });
    return key;
  }
  const password = env[chain.signer.passwordEnv];
  if (password === undefined) {
    throw new AppError("CONFIG_INVALID", `environment variable ${chain.signer.passwordEnv} is not set`, {
      field: "signer.passwordEnv",
    });
  }
  const wallet = await Wallet.fromEncryptedJson(readFileSync(chain.signer.keystore, "utf8"), password);
  return wallet.privateKey;
}
