// A region's compliance status for a period: what the operator declares about the region
// (settings.ts) combined with what the market's own records show. Honest about which is which:
//   energySharing     declared only (a legal fact the node cannot observe)
//   gridCode          declared only (device certificates live outside the node)
//   metering          declared AND at least minMeteredSharePct % of the period's completed trades
//                     carry meter evidence (a delivery report built from the bridge's readings);
//                     a period with no completed trades is judged on the declaration alone
//   consumerProtection declared AND no dispute left unresolved past its deadline (a buyer's money
//                     held longer than the market's rules allow)
//   compliant         all four
// Open disputes within their deadline are reported but do not break compliance: disputing is the
// consumer protection working.
import type { RegionRules } from "./settings.js";

export interface ComplianceFacts {
  /** Trades of the period whose delivery window ended long enough ago for a meter report. */
  completedTrades: number;
  /** Of those, the ones with meter evidence (a delivery report). */
  meteredTrades: number;
  /** Disputes open now (proposed or contested). */
  openDisputes: number;
  /** Of those, the ones past their deadline. */
  overdueDisputes: number;
}

export interface RegionStatus {
  region: string;
  energySharing: boolean;
  metering: boolean;
  consumerProtection: boolean;
  gridCode: boolean;
  gridCodeName: string | null;
  openDisputes: number;
  overdueDisputes: number;
  /** Percentage of completed trades with meter evidence, 2 decimals rounded down; null without completed trades. */
  meteredSharePct: number | null;
  compliant: boolean;
  notes: string[];
}

export function regionStatus(region: string, rules: RegionRules, facts: ComplianceFacts, minMeteredSharePct: number): RegionStatus {
  const notes: string[] = [];
  if (!rules.energySharingDirective) notes.push("energy sharing: the directive is not declared transposed/followed for this region");
  if (!rules.gridCode) notes.push(`grid code${rules.gridCodeName ? ` ${rules.gridCodeName}` : ""}: not declared met`);
  if (!rules.meteringCompliant) notes.push("metering: meters are not declared compliant for this region");
  if (!rules.consumerProtection) notes.push("consumer protection: not declared in place for this region");

  let meteredSharePct: number | null = null;
  let meteringEvidenceOk = true;
  if (facts.completedTrades > 0) {
    // Integer hundredths of a percent, rounded down: 99.999 % is not 100 %.
    meteredSharePct = Math.floor((facts.meteredTrades * 10_000) / facts.completedTrades) / 100;
    // Compare exactly, in hundredths of a percent: metered / completed >= min / 100.
    meteringEvidenceOk = facts.meteredTrades * 10_000 >= Math.round(minMeteredSharePct * 100) * facts.completedTrades;
    if (!meteringEvidenceOk) {
      notes.push(`metering: ${facts.meteredTrades} of ${facts.completedTrades} completed trades carry meter evidence (${meteredSharePct} %), below the required ${minMeteredSharePct} %`);
    }
  } else {
    notes.push("metering: no completed trades in the period to check meter evidence against; judged on the declaration alone");
  }
  if (facts.overdueDisputes > 0) notes.push(`consumer protection: ${facts.overdueDisputes} dispute(s) unresolved past their deadline`);
  if (facts.openDisputes > 0) notes.push(`${facts.openDisputes} dispute(s) open`);

  const status = {
    energySharing: rules.energySharingDirective,
    metering: rules.meteringCompliant && meteringEvidenceOk,
    consumerProtection: rules.consumerProtection && facts.overdueDisputes === 0,
    gridCode: rules.gridCode,
  };
  return {
    region,
    ...status,
    gridCodeName: rules.gridCodeName ?? null,
    openDisputes: facts.openDisputes,
    overdueDisputes: facts.overdueDisputes,
    meteredSharePct,
    compliant: status.energySharing && status.metering && status.consumerProtection && status.gridCode,
    notes,
  };
}
