/** Reads compiled contract artifacts (`hardhat build` writes them; the test command builds first). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./procs.js";

export interface Artifact {
  contractName: string;
  abi: unknown[];
  bytecode: string;
}

export function readArtifact(sourcePath: string, contractName: string): Artifact {
  const file = path.join(ROOT, "artifacts", sourcePath, `${contractName}.json`);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Artifact;
  } catch (error) {
    throw new Error(`artifact ${file} not found: run 'npx hardhat build' first`, { cause: error });
  }
}
