// The bridge's counters: what came in, what was kept, what was dead-lettered and why, which
// windows closed, what reached the chain. One plain object per bridge; snapshots are copies.
import type { RejectReason } from "./errors.js";

export interface BridgeMetrics {
  messagesIn: number;
  /** Readings stored for the first time. */
  accepted: number;
  /** Redeliveries and repeated publishes of a stored reading (same payload). */
  duplicates: number;
  /** Accepted after their interval's grace period (they count only if its window is not yet decided). */
  late: number;
  deadLettered: Partial<Record<RejectReason, number>>;
  /** Delivery windows decided (each window once). */
  intervalsClosed: number;
  tradesDecided: number;
  /** Delivery reports the chain accepted, by what the market did with them. */
  confirmations: { confirmed: number; disputed: number; alreadyFinal: number; rejected: number };
  /** Reports decided but not yet on-chain (outbox rows pending or in flight). */
  confirmationsPending: number;
  reportTransactions: number;
  /** Messages on `.../status` topics (acknowledgements and device state). */
  statusMessages: number;
  commands: { sent: number; accepted: number; completed: number; rejected: number; unacknowledged: number };
  mqttConnects: number;
  mqttDisconnects: number;
  chainErrors: number;
}

export function createMetrics(): BridgeMetrics {
  return {
    messagesIn: 0,
    accepted: 0,
    duplicates: 0,
    late: 0,
    deadLettered: {},
    intervalsClosed: 0,
    tradesDecided: 0,
    confirmations: { confirmed: 0, disputed: 0, alreadyFinal: 0, rejected: 0 },
    confirmationsPending: 0,
    reportTransactions: 0,
    statusMessages: 0,
    commands: { sent: 0, accepted: 0, completed: 0, rejected: 0, unacknowledged: 0 },
    mqttConnects: 0,
    mqttDisconnects: 0,
    chainErrors: 0,
  };
}

export function snapshotMetrics(m: BridgeMetrics): BridgeMetrics {
  return structuredClone(m);
}

export function totalDeadLettered(m: BridgeMetrics): number {
  return Object.values(m.deadLettered).reduce((a, b) => a + (b ?? 0), 0);
}
