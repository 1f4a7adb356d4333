// The CLI without the process: parses argv with node:util parseArgs, runs one command through
// the SDK and writes its output. Exit codes: 0 done, 1 refused by a rule, the API or the
// chain (the message names the option and the rule), 2 a command line it cannot run. Every
// line written passes through a filter that blanks the wallet key, should anything echo it.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { createEnergyClient } from "../sdk/createEnergyClient.js";
import { EnergyClientError } from "../sdk/errors.js";
import { commands, toJson, type Command, type OptionValues } from "./commands.js";
import { readKey } from "./readKey.js";
import { UsageError } from "./usage.js";

export const DEFAULT_API_URL = "http://127.0.0.1:8080";

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch?: typeof fetch;
}

const globalOptions = {
  api: { type: "string" },
  rpc: { type: "string" },
  keystore: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** SDK and API field names as the options a user typed. */
const fieldToOption: Record<string, string> = {
  kWh: "--kwh",
  pricePerKWh: "--price",
  "order.limitPricePerKWh": "--price",
  "order.energyWh": "--kwh",
  market: "--market",
  interval: "--interval",
  "order.deliveryStart": "--interval",
  zone: "--zone",
  "order.zone": "--zone",
  source: "--source",
  "order.source": "--source",
  acceptedSources: "--accept",
  minSellerReputationBps: "--min-reputation",
  reason: "--reason",
  orderId: "<orderId>",
  id: "<orderId>",
  listingId: "<listingId>",
  tradeId: "<tradeId>",
  apiUrl: "--api",
  rpcUrl: "--rpc",
};

export function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    "energy: trade energy on a community market node from your own wallet",
    "",
    "usage: energy <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}\n  ${"".padEnd(width)}energy ${c.usage}`),
    "",
    "global options:",
    `  --api <url>        the node (default: env ENERGY_API_URL, else ${DEFAULT_API_URL})`,
    "  --rpc <url>        chain JSON-RPC to use instead of the one the node advertises",
    "  --keystore <file>  wallet key file: {\"privateKey\": \"0x...\"} or an encrypted JSON keystore v3",
    "                     (password in env ENERGY_KEYSTORE_PASSWORD); default: env ENERGY_PRIVATE_KEY",
    "  --json             machine-readable output (amounts in base units, as strings)",
    "  -h, --help         this help; `energy <command> --help` for one command",
    "",
    "amounts: --kwh in kWh (up to 3 decimals), --price in tokens per kWh (e.g. 0.25), approve in tokens",
    "exit codes: 0 done, 1 refused (a rule, the node or the chain), 2 usage error",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return `energy ${c.usage}\n  ${c.summary}\n(global options: energy --help)`;
}

/** Blanks every occurrence of the `secrets` (hex, with or without 0x, any case) in `text`. */
export function redactKey(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    const hex = secret.replace(/^0x/i, "");
    if (/^[0-9a-fA-F]{8,}$/.test(hex)) out = out.replace(new RegExp(`(0x)?${hex}`, "gi"), "[redacted key]");
  }
  return out;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  // The raw variable too: a malformed key is refused, but must not be echoed either.
  const secrets: string[] = [io.env.ENERGY_PRIVATE_KEY?.trim() ?? ""];
  const out = (text: string) => io.stdout(`${redactKey(text, secrets)}\n`);
  const err = (text: string) => io.stderr(`${redactKey(text, secrets)}\n`);
  let json = argv.includes("--json");
  let command: Command | undefined;
  try {
    const first = parseArgs({ args: argv, options: globalOptions, strict: false, allowPositionals: true });
    const name = first.positionals[0];
    if (name === undefined || name === "help") {
      if (first.values.help === true || name === "help") {
        out(helpText());
        return 0;
      }
      throw new UsageError("no command given", "<command> [options]");
    }
    command = commands.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}; commands: ${commands.map((c) => c.name).join(", ")}`, "<command> [options]");
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { ...globalOptions, ...command.options }, strict: true, allowPositionals: true });
    } catch (e) {
      throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""), command.usage);
    }
    const values = parsed.values as OptionValues;
    json = values.json === true;
    if (values.help === true) {
      out(commandHelp(command));
      return 0;
    }
    const args = parsed.positionals.slice(1);
    const { required, optional = [] } = command.args;
    if (args.length < required.length) throw new UsageError(`missing <${required[args.length]}>`, command.usage);
    if (args.length > required.length + optional.length) throw new UsageError(`unexpected argument ${JSON.stringify(args[required.length + optional.length])}`, command.usage);

    let privateKey: string | undefined;
    if (command.wallet) {
      try {
        privateKey = readKey(io.env, typeof values.keystore === "string" ? values.keystore : undefined);
      } catch (e) {
        throw e instanceof UsageError ? new UsageError(e.message, command.usage) : e;
      }
      if (!privateKey) throw new UsageError("this command needs your wallet: set ENERGY_PRIVATE_KEY or pass --keystore <file>", command.usage);
      secrets.push(privateKey);
    }
    const apiUrl = (typeof values.api === "string" ? values.api : undefined) ?? io.env.ENERGY_API_URL ?? DEFAULT_API_URL;
    let client;
    try {
      client = createEnergyClient({ apiUrl, privateKey, rpcUrl: typeof values.rpc === "string" ? values.rpc : undefined, ...(io.fetch ? { fetch: io.fetch } : {}) });
    } catch (e) {
      if (e instanceof EnergyClientError) throw new UsageError(`${fieldToOption[e.field ?? ""] ?? e.field}: ${e.detail}`, command.usage);
      throw e;
    }
    const result = await command.run({ client, values, args });
    out(json ? toJson(result.json) : result.text);
    return result.exitCode ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      if (json) err(toJson({ error: { code: "usage", detail: e.message, usage: `energy ${e.usage ?? "<command> [options]"}` } }));
      else err(`usage error: ${e.message}\nusage: energy ${e.usage ?? "<command> [options]"}\n(energy --help lists the commands)`);
      return 2;
    }
    if (e instanceof EnergyClientError) {
      if (json) err(toJson({ error: e.toJSON() }));
      else {
        const option = e.field ? (fieldToOption[e.field] ?? e.field) : undefined;
        const where = e.source === "client" ? "" : e.source === "api" ? ` (the node said${e.status ? ` ${e.status}` : ""})` : " (the chain said)";
        err(`error${where}: ${option ? `${option}: ` : ""}${e.detail} [${e.code}]${e.retryable ? "\n(this may work if tried again later)" : ""}`);
      }
      return 1;
    }
    const message = (e as Error)?.message ?? String(e);
    if (json) err(toJson({ error: { code: "unexpected", detail: message } }));
    else err(`unexpected error: ${message}`);
    return 1;
  }
}
