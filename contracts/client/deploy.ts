// Deploys the token, the registry and the market, grants the operator roles, and records the
// addresses with the deployment block in deployments/<chainId>.json (the indexer's start).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { getAddress, keccak256, toHex, type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from "viem";
import {
  energyMarketAbi, energyMarketBytecode, prosumerRegistryAbi, prosumerRegistryBytecode, testEuroAbi, testEuroBytecode,
} from "./abi.js";

export interface DeployRoles {
  admin: Address;
  matcher: Address;
  meterOracle: Address;
  arbiter: Address;
  pauser: Address;
  registrar: Address;
}

export interface DeployPlatformParameters {
  roles: DeployRoles;
  /** Upper bound the admin may later set the network fee to (token units per kWh). */
  maxNetworkFeePerKWh: bigint;
  /** An existing payment token; a fresh tEUR is deployed when absent. */
  paymentToken?: Address;
}

export interface Deployment {
  chainId: number;
  /** First block of the deployment: the indexer's default start. */
  blockNumber: string;
  deployer: Address;
  contracts: { TestEuro?: Address; PaymentToken: Address; ProsumerRegistry: Address; EnergyMarket: Address };
  roles: DeployRoles;
}

export const roleIds = {
  DEFAULT_ADMIN_ROLE: `0x${"00".repeat(32)}` as Hex,
  MATCHER_ROLE: keccak256(toHex("MATCHER_ROLE")),
  METER_ORACLE_ROLE: keccak256(toHex("METER_ORACLE_ROLE")),
  ARBITER_ROLE: keccak256(toHex("ARBITER_ROLE")),
  PAUSER_ROLE: keccak256(toHex("PAUSER_ROLE")),
  REGISTRAR_ROLE: keccak256(toHex("REGISTRAR_ROLE")),
} as const;

type Wallet = WalletClient<Transport, Chain | undefined, Account>;

/** Deploys everything from `wallet`'s account, which must end up holding no role it was not given. */
export async function deployPlatform(
  wallet: Wallet,
  client: PublicClient,
  { roles, maxNetworkFeePerKWh, paymentToken }: DeployPlatformParameters,
): Promise<Deployment> {
  const deployer = wallet.account.address;
  const chainId = await client.getChainId();
  const send = async (hash: Hex) => {
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`deployment transaction ${hash} reverted`);
    return receipt;
  };
  const deploy = async (abi: readonly unknown[], bytecode: Hex, args: readonly unknown[]) => {
    const receipt = await send(await wallet.deployContract({ abi, bytecode, args, chain: wallet.chain } as never));
    if (!receipt.contractAddress) throw new Error("deployment produced no contract address");
    return { ...receipt, contractAddress: getAddress(receipt.contractAddress) };
  };

  let testEuro: Address | undefined;
  let firstBlock: bigint | undefined;
  if (!paymentToken) {
    const r = await deploy(testEuroAbi, testEuroBytecode, []);
    testEuro = r.contractAddress!;
    firstBlock = r.blockNumber;
  }
  const tokenAddress = paymentToken ?? testEuro!;
  const registryReceipt = await deploy(prosumerRegistryAbi, prosumerRegistryBytecode, [deployer]);
  firstBlock ??= registryReceipt.blockNumber;
  const registry = registryReceipt.contractAddress!;
  const market = (await deploy(energyMarketAbi, energyMarketBytecode, [deployer, tokenAddress, registry, maxNetworkFeePerKWh]))
    .contractAddress!;

  const grant = async (abi: typeof energyMarketAbi | typeof prosumerRegistryAbi, address: Address, role: Hex, account: Address) =>
    send(await wallet.writeContract({ abi, address, functionName: "grantRole", args: [role, account], chain: wallet.chain } as never));
  const renounce = async (abi: typeof energyMarketAbi | typeof prosumerRegistryAbi, address: Address, role: Hex) =>
    send(await wallet.writeContract({ abi, address, functionName: "renounceRole", args: [role, deployer], chain: wallet.chain } as never));

  await grant(energyMarketAbi, market, roleIds.MATCHER_ROLE, roles.matcher);
  await grant(energyMarketAbi, market, roleIds.METER_ORACLE_ROLE, roles.meterOracle);
  await grant(energyMarketAbi, market, roleIds.ARBITER_ROLE, roles.arbiter);
  await grant(energyMarketAbi, market, roleIds.PAUSER_ROLE, roles.pauser);
  await grant(prosumerRegistryAbi, registry, roleIds.REGISTRAR_ROLE, roles.registrar);
  if (roles.admin.toLowerCase() !== deployer.toLowerCase()) {
    // Hand administration over, then drop the deployer's own powers.
    await grant(energyMarketAbi, market, roleIds.DEFAULT_ADMIN_ROLE, roles.admin);
    await grant(prosumerRegistryAbi, registry, roleIds.DEFAULT_ADMIN_ROLE, roles.admin);
    if (roles.registrar.toLowerCase() !== deployer.toLowerCase()) {
      await renounce(prosumerRegistryAbi, registry, roleIds.REGISTRAR_ROLE);
    }
    await renounce(energyMarketAbi, market, roleIds.DEFAULT_ADMIN_ROLE);
    await renounce(prosumerRegistryAbi, registry, roleIds.DEFAULT_ADMIN_ROLE);
  }

  return {
    chainId,
    blockNumber: firstBlock.toString(),
    deployer,
    contracts: {
      ...(testEuro ? { TestEuro: testEuro } : {}),
      PaymentToken: tokenAddress,
      ProsumerRegistry: registry,
      EnergyMarket: market,
    },
    roles,
  };
}

export function deploymentPath(dir: string, chainId: number): string {
  return path.join(dir, `${chainId}.json`);
}

export async function writeDeployment(dir: string, deployment: Deployment): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = deploymentPath(dir, deployment.chainId);
  await writeFile(file, `${JSON.stringify(deployment, null, 2)}\n`);
  return file;
}

export async function readDeployment(dir: string, chainId: number): Promise<Deployment | undefined> {
  try {
    return JSON.parse(await readFile(deploymentPath(dir, chainId), "utf8")) as Deployment;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
