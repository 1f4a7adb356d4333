import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";

// The compiler comes from the pinned npm `solc` package (WASM), never from a download:
// the machines this runs on reach only the npm and Debian registries.
const soljson = createRequire(import.meta.url).resolve("solc/soljson.js");

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    version: "0.8.28",
    path: soljson,
    settings: {
      optimizer: { enabled: true, runs: 100 },
      evmVersion: "cancun",
    },
  },
  paths: {
    tests: { mocha: "test" },
  },
  test: {
    mocha: { timeout: 120_000 },
  },
  networks: {
    localhost: {
      type: "http",
      url: process.env.CHAIN_RPC_URL ?? "http://127.0.0.1:8545",
    },
  },
});
