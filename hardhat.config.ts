// Compiles offline: solc 0.8.17 (the version Nitro pins) comes from the npm `solc`
// package as wasm, because no compiler download is possible on the build machines.
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
import hardhatEthers from "@nomicfoundation/hardhat-ethers";

const require = createRequire(import.meta.url);

export default defineConfig({
  plugins: [hardhatEthers],
  solidity: {
    version: "0.8.17",
    path: require.resolve("solc/soljson.js"),
    settings: { optimizer: { enabled: true, runs: 200 } },
    // Nitro's own sources, so the tests run the adjudicator exactly as published.
    npmFilesToBuild: [
      "@statechannels/nitro-protocol/contracts/NitroAdjudicator.sol",
      "@statechannels/nitro-protocol/contracts/ConsensusApp.sol",
    ],
  },
  networks: {
    // In-process EDR chain used by the tests and the embedded local network.
    hardhatMainnet: { type: "edr-simulated", chainType: "l1" },
    localhost: { type: "http", chainType: "l1", url: "http://127.0.0.1:8545" },
  },
});
