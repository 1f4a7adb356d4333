// One name per setting across `npm start`, the standalone bridge and the standalone indexer.
// Names the bridge and the indexer used before the names were unified stay accepted as aliases
// (documented in their READMEs); the canonical name wins when both are set.

type Env = Record<string, string | undefined>;

/** Canonical name → older names still read, per program. */
export const settingAliases = {
  bridge: {
    MQTT_HOST: ["BRIDGE_MQTT_HOST"],
    MQTT_PORT: ["BRIDGE_MQTT_PORT"],
    DATA_DIR: ["BRIDGE_DATA_DIR"],
    MARKET_ADDRESS: ["BRIDGE_MARKET_ADDRESS"],
    REGISTRY_ADDRESS: ["BRIDGE_REGISTRY_ADDRESS"],
    START_BLOCK: ["BRIDGE_START_BLOCK"],
    FINALITY_DEPTH: ["BRIDGE_FINALITY_DEPTH"],
  },
  indexer: {
    CHAIN_RPC_URL: ["INDEXER_RPC_URL"],
    DATA_DIR: ["INDEXER_DATA_DIR"],
    MARKET_ADDRESS: ["INDEXER_MARKET_ADDRESS"],
    REGISTRY_ADDRESS: ["INDEXER_REGISTRY_ADDRESS"],
    START_BLOCK: ["INDEXER_START_BLOCK"],
    FINALITY_DEPTH: ["INDEXER_FINALITY_DEPTH"],
    COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH: ["INDEXER_CO2_KG_PER_KWH"],
  },
} as const satisfies Record<string, Record<string, readonly string[]>>;

/**
 * The variable each setting is read from: the canonical name when set (or when nothing is), else
 * the first alias that is set. Reading `env[nameOf("MQTT_PORT")]` gives the value, and an error
 * names the variable the user actually wrote.
 */
export function settingNames(env: Env, aliases: Record<string, readonly string[]>): (canonical: string) => string {
  const isSet = (name: string) => env[name] !== undefined && env[name] !== "";
  return (canonical) => {
    if (isSet(canonical)) return canonical;
    return aliases[canonical]?.find(isSet) ?? canonical;
  };
}
