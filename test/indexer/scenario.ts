// One run of the market that emits every event the contracts can emit through their public
// functions, and walks trades through every path of the escrow state machine. Returns the
// trades by role so tests can check each one's indexed lifecycle against the chain.
import { stringToHex, type Address } from "viem";
import { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import { roleIds } from "../../contracts/client/deploy.js";
import { SIDE_SELL, sourceMask } from "../../contracts/client/order.js";
import {
  advanceTime, EVIDENCE, HOUR, latestTimestamp, meterId, nextWindow, PRICE, report, send, settleFills, signedOrder, tradesOf, ZONE_A,
  type MarketChain, type ProvenTrade,
} from "./fixtures.js";

export interface Scenario {
  /** By the path each trade took. */
  trades: {
    listingSettled: ProvenTrade; // listing trade, reported in full → settled
    listingOpen: ProvenTrade; // listing trade, never reported → stays executed/open
    proposalFinalized: ProvenTrade; // short report → proposed → finalized pro rata
    contestedResolved: ProvenTrade; // short report → buyer contests → arbiter splits
    contestedTimeout: ProvenTrade; // seller contests before a report → report → timeout → meter's word
    releasedEarly: ProvenTrade; // buyer releases early → settled
    reclaimed: ProvenTrade; // no report → buyer reclaims → refunded
    proposalOpen: ProvenTrade; // short report → proposed, left undecided
  };
  listingFilled: bigint;
  listingCancelled: bigint;
  cancelledOrderHash: `0x${string}`;
  feeRecipient: Address;
  arbiterSplit: bigint;
}

export async function runScenario(m: MarketChain): Promise<Scenario> {
  const [s0, s1, s2, s3, s4] = m.sellers as [Address, Address, Address, Address, Address];
  const [b0, b1, b2, b3, b4] = m.buyers as [Address, Address, Address, Address, Address];
  const communityRecipient = m.accounts[16]!;
  const networkRecipient = m.accounts[17]!;

  await send(m, m.admin, m.market, energyMarketAbi, "setFees", [100, communityRecipient, 1_000n, networkRecipient]);
  await send(m, m.admin, m.market, energyMarketAbi, "setDeliveryTolerance", [500]);
  await send(m, m.admin, m.registry, prosumerRegistryAbi, "updateProsumer", [s4, meterId(99), ZONE_A, 12_000n, 9_000n, sourceMask(["solar", "wind"])]);
  await send(m, m.admin, m.registry, prosumerRegistryAbi, "setStatus", [b4, 2]);
  await send(m, m.admin, m.registry, prosumerRegistryAbi, "setStatus", [b4, 1]);
  await send(m, m.admin, m.market, energyMarketAbi, "grantRole", [roleIds.PAUSER_ROLE, m.accounts[18]!]);
  await send(m, m.admin, m.market, energyMarketAbi, "revokeRole", [roleIds.PAUSER_ROLE, m.accounts[18]!]);

  const w = await nextWindow(m);
  // Listing 1: taken twice until empty.
  const listingFilled = await m.client.readContract({ address: m.market, abi: energyMarketAbi, functionName: "nextListingId" });
  await send(m, s0, m.market, energyMarketAbi, "createListing", [ZONE_A, 3_000n, PRICE, Number(w.deliveryStart), Number(w.deliveryEnd), Number(w.deliveryStart), 1]);
  const [listingSettled] = tradesOf(await send(m, b0, m.market, energyMarketAbi, "executeTrade", [listingFilled, 1_000n]));
  const [listingOpen] = tradesOf(await send(m, b1, m.market, energyMarketAbi, "executeTrade", [listingFilled, 2_000n]));
  // Listing 2: withdrawn.
  const listingCancelled = listingFilled + 1n;
  await send(m, s1, m.market, energyMarketAbi, "createListing", [ZONE_A, 500n, PRICE, Number(w.deliveryStart), Number(w.deliveryEnd), Number(w.deliveryStart), 2]);
  await send(m, s1, m.market, energyMarketAbi, "cancelListing", [listingCancelled]);

  // One batch: six trades and one fill the contract rejects.
  const { trades } = await settleFills(m, [
    { buyer: b0, seller: s1, energyWh: 1_000n },
    { buyer: b1, seller: s2, energyWh: 2_000n },
    { buyer: b2, seller: s3, energyWh: 1_500n },
    { buyer: b3, seller: s0, energyWh: 1_000n },
    { buyer: b2, seller: s4, energyWh: 800n, rejected: true },
    { buyer: b0, seller: s2, energyWh: 700n },
    { buyer: b1, seller: s3, energyWh: 1_200n },
  ], w);
  const [proposalFinalized, contestedResolved, contestedTimeout, releasedEarly, reclaimed, proposalOpen] = trades as [ProvenTrade, ProvenTrade, ProvenTrade, ProvenTrade, ProvenTrade, ProvenTrade];

  const cancelled = await signedOrder(m, s3, SIDE_SELL, w, 1_000n, PRICE);
  const receipt = await send(m, s3, m.market, energyMarketAbi, "cancelOrder", [cancelled.order]);
  const cancelledOrderHash = receipt.logs.find((l) => l.address.toLowerCase() === m.market.toLowerCase())!.topics[1]!;
  await send(m, s2, m.market, energyMarketAbi, "raiseNonceFloor", [100n]);
  await send(m, m.admin, m.market, energyMarketAbi, "pause", []);
  await send(m, m.admin, m.market, energyMarketAbi, "unpause", []);

  // After the delivery window.
  const now = await latestTimestamp(m);
  await advanceTime(m, w.deliveryEnd - now + 1n);
  await report(m, listingSettled!, listingSettled!.trade.energyWh);
  await report(m, proposalFinalized, proposalFinalized.trade.energyWh / 2n);
  await report(m, contestedResolved, contestedResolved.trade.energyWh / 2n);
  await report(m, proposalOpen, 100n);
  await send(m, contestedResolved.trade.buyer, m.market, energyMarketAbi, "openDispute", [contestedResolved.trade, contestedResolved.proof, stringToHex("short", { size: 32 })]);
  const arbiterSplit = contestedResolved.trade.amount / 3n;
  await send(m, m.arbiter, m.market, energyMarketAbi, "resolveDispute", [contestedResolved.trade, contestedResolved.proof, arbiterSplit]);
  await send(m, contestedTimeout.trade.seller, m.market, energyMarketAbi, "openDispute", [contestedTimeout.trade, contestedTimeout.proof, stringToHex("buyer silent", { size: 32 })]);
  // Below tolerance, so the contest stays for the arbiter (within it, the report would pay in full at once).
  await send(m, m.oracle, m.market, energyMarketAbi, "reportDeliveries", [[{ trade: contestedTimeout.trade, proof: contestedTimeout.proof, deliveredWh: contestedTimeout.trade.energyWh / 2n, evidenceHash: EVIDENCE }]]);
  await send(m, releasedEarly.trade.buyer, m.market, energyMarketAbi, "releaseEarly", [releasedEarly.trade, releasedEarly.proof]);

  // Past every window: the dispute window, the arbitration timeout and the confirmation deadline.
  await advanceTime(m, 2n * HOUR + 1n);
  await send(m, m.accounts[19]!, m.market, energyMarketAbi, "finalizeDispute", [proposalFinalized.trade, proposalFinalized.proof]);
  await send(m, m.accounts[19]!, m.market, energyMarketAbi, "finalizeDispute", [contestedTimeout.trade, contestedTimeout.proof]);
  await send(m, reclaimed.trade.buyer, m.market, energyMarketAbi, "reclaim", [reclaimed.trade, reclaimed.proof]);
  await send(m, communityRecipient, m.market, energyMarketAbi, "claimFees", []);

  return {
    trades: { listingSettled: listingSettled!, listingOpen: listingOpen!, proposalFinalized, contestedResolved, contestedTimeout, releasedEarly, reclaimed, proposalOpen },
    listingFilled,
    listingCancelled,
    cancelledOrderHash,
    feeRecipient: communityRecipient,
    arbiterSplit,
  };
}
