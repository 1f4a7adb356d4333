// The money arithmetic of contracts/libraries/EnergyMath.sol, in bigint. One rounding rule for
// the whole system (round down); test/vectors/amounts.json holds both sides to it.

export const WH_PER_KWH = 1000n;
export const BPS = 10_000n;

/** Payment for `energyWh` at `pricePerKWh` token base units per kWh, rounded down. */
export function amountFor(energyWh: bigint, pricePerKWh: bigint): bigint {
  if (energyWh < 0n || pricePerKWh < 0n) throw new RangeError("amountFor: energyWh and pricePerKWh must be >= 0");
  return (energyWh * pricePerKWh) / WH_PER_KWH;
}

export const SECONDS_PER_HOUR = 3600n;

/** The most energy a connection of `powerW` watts carries in `seconds`, in Wh, rounded down:
 *  the market's cap on what one account sells (export limit) or buys (import limit) for one
 *  delivery window is `energyWhAt(limitW, deliveryEnd - deliveryStart)`. */
export function energyWhAt(powerW: bigint, seconds: bigint): bigint {
  if (powerW < 0n || seconds < 0n) throw new RangeError("energyWhAt: powerW and seconds must be >= 0");
  return (powerW * seconds) / SECONDS_PER_HOUR;
}

/** `value * bps / 10_000`, rounded down. */
export function bpsOf(value: bigint, bps: bigint): bigint {
  return (value * bps) / BPS;
}

/** Whether `deliveredWh` is at most `toleranceBps` short of `contractedWh`. */
export function withinTolerance(deliveredWh: bigint, contractedWh: bigint, toleranceBps: bigint): boolean {
  return deliveredWh * BPS >= contractedWh * (BPS - toleranceBps);
}
