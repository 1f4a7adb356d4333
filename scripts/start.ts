// `npm start`: at this stage, the chain part of the node. Starts the embedded chain on
// 127.0.0.1:8545 (or uses CHAIN_RPC_URL), deploys the contracts with roles, funds the local
// test accounts with tEUR, prints where everything is, and keeps running until Ctrl-C.
import { createPublicClient, createWalletClient, custom, defineChain, formatUnits, getAddress, http, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { testEuroAbi } from "../contracts/client/abi.js";
import { deployPlatform, writeDeployment } from "../contracts/client/deploy.js";
import { ConfigError, readStartConfig } from "./startConfig.js";
import { startLocalChain, type LocalChain } from "./localChain.js";

const FAUCET_PER_ACCOUNT = 1_000n * 1_000_000n;

async function main() {
  const config = readStartConfig(process.env);
  let local: LocalChain | undefined;
  let wallet, client, rpcUrl: string;
  let testAccounts: Address[] = [];

  if (config.chainRpcUrl) {
    rpcUrl = config.chainRpcUrl;
    const probe = createPublicClient({ transport: http(rpcUrl) });
    const chain = defineChain({ id: await probe.getChainId(), name: "configured", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
    client = createPublicClient({ chain, transport: http(rpcUrl) });
    wallet = createWalletClient({ chain, account: privateKeyToAccount(config.deployerPrivateKey!), transport: http(rpcUrl) });
  } else {
    local = await startLocalChain({ host: config.chainHost, port: config.chainPort });
    rpcUrl = local.url;
    const transport = custom(local.provider);
    client = createPublicClient({ chain: hardhat, transport });
    const accounts = ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
    wallet = createWalletClient({ chain: hardhat, account: accounts[0]!, transport });
    testAccounts = accounts.slice(4, 10);
  }

  const [a0, a1, a2, a3] = config.chainRpcUrl
    ? Array(4).fill(wallet.account.address)
    : ((await client.request({ method: "eth_accounts" } as never)) as Address[]).map((a) => getAddress(a));
  const roles = { admin: a0!, registrar: a0!, pauser: a0!, matcher: a1!, meterOracle: a2!, arbiter: a3! };
  const deployment = await deployPlatform(wallet as never, client as never, { roles, maxNetworkFeePerKWh: 1_000_000n });
  const file = await writeDeployment(config.deploymentsDir, deployment);

  if (deployment.contracts.TestEuro) {
    for (const account of testAccounts) {
      const hash = await wallet.writeContract({
        abi: testEuroAbi, address: deployment.contracts.TestEuro, functionName: "faucet", args: [account, FAUCET_PER_ACCOUNT],
      } as never);
      await client.waitForTransactionReceipt({ hash });
    }
  }

  const lines = [
    "",
    "P2P energy market — chain ready",
    `  JSON-RPC        ${rpcUrl}${local ? "  (embedded Hardhat/EDR chain)" : ""}`,
    `  chain id        ${deployment.chainId}`,
    `  deployment      ${file} (block ${deployment.blockNumber})`,
    `  tEUR token      ${deployment.contracts.PaymentToken}`,
    `  registry        ${deployment.contracts.ProsumerRegistry}`,
    `  market          ${deployment.contracts.EnergyMarket}`,
    `  roles           admin/registrar/pauser ${roles.admin}`,
    `                  matcher ${roles.matcher}`,
    `                  meter oracle ${roles.meterOracle}`,
    `                  arbiter ${roles.arbiter}`,
  ];
  if (testAccounts.length > 0) {
    lines.push(`  test accounts   (Hardhat's well-known keys; ${formatUnits(FAUCET_PER_ACCOUNT, 6)} tEUR each)`);
    for (const a of testAccounts) lines.push(`                  ${a}`);
  }
  lines.push("", "Ctrl-C stops it.", "");
  console.log(lines.join("\n"));

  const stop = async () => {
    await local?.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`start: configuration error: ${err.message}`);
  else console.error("start: failed:", err instanceof Error ? err.message : err);
  process.exit(1);
});
