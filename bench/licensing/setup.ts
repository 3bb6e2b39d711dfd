/**
 * The licensing benchmark's chains: N local hardhat nodes (launchers/chains.ts), the LicenseToken
 * contract deployed on each by dev account 15 and ISSUER_ROLE granted to the issuing accounts.
 * Accounts 15–19 of the public Hardhat test mnemonic are the benchmark's (other tests use others).
 */
import {
  ContractFactory,
  HDNodeWallet,
  JsonRpcProvider,
  Network,
  Wallet,
  type Contract,
  type InterfaceAbi,
} from "ethers";
import { startChains, type ChainInfo, type ChainSet } from "../../launchers/chains.js";
import { LICENSE_ARTIFACT_PATH, readContractArtifact } from "../../server/artifact.js";
import { DEFAULT_ADMIN_DELAY } from "../../scripts/deploy.js";

export const ARTIFACT = LICENSE_ARTIFACT_PATH;

/** Hardhat's public development mnemonic (printed by every `hardhat node`; local dev chains only). */
const DEV_MNEMONIC = "test test test test test test test test test test test junk";

export const ACCOUNTS = {
  deployer: 15,
  /** Pre-signed pipelined transactions (raw `issue` and `issueBatch`). */
  pipelined: 16,
  naive: 17,
  /** The licensing service's signer in the REST measurement. */
  service: 18,
} as const;

export function devKey(index: number): string {
  return HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).privateKey;
}

export interface Artifact {
  abi: InterfaceAbi;
  bytecode: string;
}

/** The LicenseToken artifact, read as the server and the deploy script read it. */
export function readArtifact(): Artifact {
  return readContractArtifact();
}

/** A chain with the contract deployed; measurements create their own clients (no shared sockets). */
export interface BenchChain extends ChainInfo {
  address: string;
}

export interface BenchChains {
  chains: BenchChain[];
  artifact: Artifact;
  stop(): Promise<void>;
}

/** A provider without ethers' 250 ms cache of identical calls and without network auto-detection. */
export function providerFor(chain: ChainInfo): JsonRpcProvider {
  return new JsonRpcProvider(chain.rpcUrl, Network.from(chain.chainId), {
    cacheTimeout: -1,
    staticNetwork: true,
    batchMaxCount: 1,
  });
}

export async function startBenchChains(chainIds: readonly number[]): Promise<BenchChains> {
  const artifact = readArtifact();
  const set: ChainSet = await startChains({ chainIds });
  const providers: JsonRpcProvider[] = [];
  try {
    const chains = await Promise.all(
      set.chains.map(async (info) => {
        const provider = providerFor(info);
        providers.push(provider);
        const deployer = new Wallet(devKey(ACCOUNTS.deployer), provider);
        const factory = new ContractFactory(artifact.abi, artifact.bytecode, deployer);
        const contract = (await factory.deploy(
          deployer.address,
          deployer.address,
          "",
          DEFAULT_ADMIN_DELAY,
        )) as Contract;
        await contract.waitForDeployment();
        const role = (await contract.getFunction("ISSUER_ROLE")()) as string;
        for (const index of [ACCOUNTS.pipelined, ACCOUNTS.naive, ACCOUNTS.service]) {
          const account = new Wallet(devKey(index)).address;
          await (await contract.getFunction("grantRole")(role, account)).wait();
        }
        const address = await contract.getAddress();
        provider.destroy();
        return { ...info, address };
      }),
    );
    return {
      chains,
      artifact,
      stop: async () => {
        for (const p of providers) p.destroy();
        await set.stop();
      },
    };
  } catch (error) {
    for (const p of providers) p.destroy();
    await set.stop();
    throw error;
  }
}
