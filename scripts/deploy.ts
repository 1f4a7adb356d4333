// `npm run deploy`: deploys to the chain at CHAIN_RPC_URL from DEPLOYER_PRIVATE_KEY, hands the
// roles to the ROLE_* addresses (the deployer where unset), and writes deployments/<chainId>.json.
import { createPublicClient, createWalletClient, defineChain, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployPlatform, writeDeployment } from "../contracts/client/deploy.js";
import { ConfigError, readDeployConfig } from "./startConfig.js";

async function main() {
  const config = readDeployConfig(process.env);
  const transport = http(config.chainRpcUrl);
  const id = await createPublicClient({ transport }).getChainId();
  const chain = defineChain({ id, name: `chain ${id}`, nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [config.chainRpcUrl] } } });
  const account = privateKeyToAccount(config.deployerPrivateKey);
  const wallet = createWalletClient({ chain, account, transport });
  const client = createPublicClient({ chain, transport });
  const me = account.address;
  const r = config.roles;
  const roles = {
    admin: r.admin ?? me, registrar: r.registrar ?? me, pauser: r.pauser ?? me,
    matcher: r.matcher ?? me, meterOracle: r.meterOracle ?? me, arbiter: r.arbiter ?? me,
  };
  const deployment = await deployPlatform(wallet, client as never, {
    roles, maxNetworkFeePerKWh: config.maxNetworkFeePerKWh, ...(config.paymentToken ? { paymentToken: config.paymentToken } : {}),
  });
  const file = await writeDeployment(config.deploymentsDir, deployment);
  console.log(JSON.stringify({ file, ...deployment }, null, 2));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`deploy: configuration error: ${err.message}`);
  else console.error("deploy: failed:", err instanceof Error ? err.message : err);
  process.exit(1);
});
