// numeric(78,0) and int8 columns read back as bigint, so uint256 amounts and unix milliseconds
// stay exact; a numeric with a fraction stays a string. Shared by PGlite (in the node's thread or
// its own) and pg.
export const NUMERIC_OID = 1700;
export const INT8_OID = 20;

export function parseNumeric(value: string): bigint | string {
  return /^-?\d+$/.test(value) ? BigInt(value) : value;
}

export const bigintParsers = { [NUMERIC_OID]: parseNumeric, [INT8_OID]: parseNumeric };
