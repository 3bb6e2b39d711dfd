/**
 * The compiled LicenseToken artifact (`npx hardhat build` writes it; the Docker image copies it): the
 * one source of the contract's ABI for the server, the deploy script and the tests. No side effects,
 * so the deploy script can import it before the artifact exists.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { InterfaceAbi } from "ethers";
import { AppError } from "./errors.js";

/** Where `npx hardhat build` writes the contract's artifact (`dist/` mirrors the tree, so it resolves there too). */
export const LICENSE_ARTIFACT_PATH = fileURLToPath(
  new URL("../artifacts/contracts/LicenseToken.sol/LicenseToken.json", import.meta.url),
);

export interface ContractArtifact {
  contractName?: string;
  abi: InterfaceAbi & unknown[];
  bytecode: string;
}

/** Reads and checks an artifact; `ARTIFACT_MISSING` when it is absent or has no ABI or bytecode. */
export function readContractArtifact(file: string = LICENSE_ARTIFACT_PATH): ContractArtifact {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new AppError("ARTIFACT_MISSING", `artifact ${file} not found: run 'npx hardhat build' first`, {
      cause: error,
    });
  }
  const artifact = JSON.parse(text) as Partial<ContractArtifact>;
  if (!Array.isArray(artifact.abi) || typeof artifact.bytecode !== "string" || artifact.bytecode === "0x")
    throw new AppError("ARTIFACT_MISSING", `artifact ${file} has no abi or bytecode`);
  return artifact as ContractArtifact;
}
