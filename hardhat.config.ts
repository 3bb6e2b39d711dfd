import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import hardhatToolboxMochaEthersPlugin from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";

/** The Solidity version we compile with; the `solc` npm package is pinned to the same version. */
export const SOLC_VERSION = "0.8.28";

// Compile offline: Hardhat's compiler download cannot reach the internet on our machines (HHE905).
// `solidity.path` accepts the solc-js build, but only as an absolute path (HHE908).
const require = createRequire(import.meta.url);
const soljsonPath = require.resolve("solc/soljson.js");
// Spec output plus mocha's own counts for scripts/test (see the reporter's header).
const countingReporter = fileURLToPath(new URL("./test/support/counting-reporter.cjs", import.meta.url));

export default defineConfig({
  plugins: [hardhatToolboxMochaEthersPlugin],
  solidity: {
    profiles: {
      default: {
        version: SOLC_VERSION,
        path: soljsonPath,
        // Same bytecode in tests, gas measurements (docs/contracts.md) and deployments.
        settings: {
          optimizer: { enabled: true, runs: 200 },
        },
      },
      production: {
        version: SOLC_VERSION,
        path: soljsonPath,
        settings: {
          optimizer: { enabled: true, runs: 200 },
        },
      },
    },
  },
  test: {
    mocha: {
      reporter: countingReporter,
      timeout: 120_000,
    },
  },
  paths: {
    tests: {
      mocha: "test/contracts",
    },
  },
  networks: {
    hardhatMainnet: {
      type: "edr-simulated",
      chainType: "l1",
    },
  },
});
