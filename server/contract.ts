/**
 * The LicenseToken contract as the server calls it: the ABI of the compiled artifact (every function,
 * event and custom error, so reverts decode by name) and the interface built from it.
 */
import { Interface } from "ethers";
import { readContractArtifact } from "./artifact.js";

export const LICENSE_ABI = readContractArtifact().abi;

export const LICENSE_INTERFACE = new Interface(LICENSE_ABI);
