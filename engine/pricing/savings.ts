// What P2P trading saves a buyer against the grid, per household and for the whole community
// (the trading guide's estimate_savings and calculate_community_savings).
//
// Money is bigint token base units. Each cost is amountFor(energyWh, pricePerKWh) =
// floor(energyWh * pricePerKWh / 1000), the one rounding rule the contracts use, and savings is
// gridCost - p2pCost. So gridCost = p2pCost + savings holds exactly, and a P2P cost is exactly
// what the chain would charge; savings can differ from floor(Wh * (grid - p2p) / 1000) by at most
// one base unit. Percentages are integer basis points (10_000 = 100 %), rounded down (towards
// minus infinity when savings are negative).

import { amountFor } from "../../contracts/client/amount.js";
import { ValidationError } from "../../lib/errors.js";
import { describe, requireSafeInteger } from "./validation.js";

export interface EstimateSavingsReturnType {
  /** What the energy would cost from the grid, token base units. */
  gridCost: bigint;
  /** What it costs P2P, token base units (what settlement charges). */
  p2pCost: bigint;
  /** gridCost - p2pCost; negative when the P2P price is above the grid price. */
  savings: bigint;
  /**
   * floor(savings * 10_000 / gridCost) basis points (4375 = 43.75 %); 0 when gridCost is 0. At
   * most 10_000; below -2^53 (a P2P cost ~10^12 times the grid cost) it would lose precision.
   */
  savingsBps: number;
}

export interface CommunityParticipant {
  id: string;
  energyWh: number;
  gridPricePerKWh: number;
  p2pPricePerKWh: number;
}

export interface ParticipantSavings extends EstimateSavingsReturnType {
  id: string;
}

export interface CommunitySavingsReturnType {
  participantCount: number;
  totalEnergyWh: bigint;
  totalGridCost: bigint;
  totalP2pCost: bigint;
  /** Sum over participants of their savings (= totalGridCost - totalP2pCost). */
  totalSavings: bigint;
  /** floor(totalSavings / participantCount); 0 with no participants. */
  averageSavingsPerParticipant: bigint;
  /** floor(totalSavings * 10_000 / totalGridCost); 0 when totalGridCost is 0. */
  savingsBps: number;
  /** One entry per participant, in input order. */
  participants: ParticipantSavings[];
}

export type SavingsErrorType = ValidationError;

const BPS = 10_000n;

/** Division rounded towards minus infinity (bigint `/` truncates towards zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function bpsOfSavings(savings: bigint, gridCost: bigint): number {
  return gridCost === 0n ? 0 : Number(floorDiv(savings * BPS, gridCost));
}

function costs(prefix: string, energyWh: number, gridPricePerKWh: number, p2pPricePerKWh: number): EstimateSavingsReturnType {
  const wh = BigInt(requireSafeInteger(`${prefix}energyWh`, energyWh));
  const gridCost = amountFor(wh, BigInt(requireSafeInteger(`${prefix}gridPricePerKWh`, gridPricePerKWh)));
  const p2pCost = amountFor(wh, BigInt(requireSafeInteger(`${prefix}p2pPricePerKWh`, p2pPricePerKWh)));
  const savings = gridCost - p2pCost;
  return { gridCost, p2pCost, savings, savingsBps: bpsOfSavings(savings, gridCost) };
}

/**
 * Grid cost, P2P cost, savings and savings share for `energyWh` bought at `p2pPricePerKWh`
 * instead of `gridPricePerKWh` (token base units per kWh). Throws ValidationError naming the
 * field for a negative or non-integer input.
 */
export function estimateSavings(energyWh: number, gridPricePerKWh: number, p2pPricePerKWh: number): EstimateSavingsReturnType {
  return costs("", energyWh, gridPricePerKWh, p2pPricePerKWh);
}

/**
 * Community savings: the sum over participants of kWh x (grid price - P2P price), computed per
 * participant as in estimateSavings, with totals and the per-participant average. Participant ids
 * must be unique (one row per participant; aggregate trades first).
 */
export function communitySavings(participants: readonly CommunityParticipant[]): CommunitySavingsReturnType {
  if (!Array.isArray(participants)) throw new ValidationError("participants", "must be an array");
  const seen = new Set<string>();
  const rows: ParticipantSavings[] = [];
  let totalEnergyWh = 0n;
  let totalGridCost = 0n;
  let totalP2pCost = 0n;
  participants.forEach((p, i) => {
    if (typeof p?.id !== "string" || p.id.length === 0) {
      throw new ValidationError(`participants[${i}].id`, `must be a non-empty string, got ${describe(p?.id)}`);
    }
    if (seen.has(p.id)) {
      throw new ValidationError(`participants[${i}].id`, `must be unique, "${p.id}" appears twice`, { code: "duplicate_participant" });
    }
    seen.add(p.id);
    const row = costs(`participants[${i}].`, p.energyWh, p.gridPricePerKWh, p.p2pPricePerKWh);
    rows.push({ id: p.id, ...row });
    totalEnergyWh += BigInt(p.energyWh);
    totalGridCost += row.gridCost;
    totalP2pCost += row.p2pCost;
  });
  const totalSavings = totalGridCost - totalP2pCost;
  return {
    participantCount: rows.length,
    totalEnergyWh,
    totalGridCost,
    totalP2pCost,
    totalSavings,
    averageSavingsPerParticipant: rows.length === 0 ? 0n : floorDiv(totalSavings, BigInt(rows.length)),
    savingsBps: bpsOfSavings(totalSavings, totalGridCost),
    participants: rows,
  };
}
