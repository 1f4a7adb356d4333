// Trust II, row 9: /healthz must not answer "ok" while the engine refuses orders. Through a
// real node (startNode's probes and the health route): a quarantined book degrades it while the
// engine still trades, and a stopped engine (its log write failed) degrades it with the reason.
import { expect } from "chai";
import { sql } from "kysely";
import type { Hex } from "viem";
import type { Order } from "../../contracts/client/order.js";
import { OrderBook, type BookOrderInput, type SubmitOptions } from "../../engine/book/orderBook.js";
import { createOrderHasher, hexToBytes, signDigest } from "../../engine/intake/orderSignature.js";
import { nextTradableInterval, zoneToHex } from "../../engine/markets.js";
import { BaseError } from "../../lib/errors.js";
import { injectClient, startTestNode, type TestNode } from "../server/helpers.js";

describe("engine health through /healthz", function () {
  this.timeout(180_000);
  let t: TestNode;
  const originalSubmit = OrderBook.prototype.submit;

  before(async () => {
    t = await startTestNode();
  });

  after(async () => {
    OrderBook.prototype.submit = originalSubmit;
    // Put the log table back (if the test took it away) so the node closes as usual.
    await sql`alter table if exists engine_ops_away rename to engine_ops`.execute(t?.node.services.indexer.db as never).catch(() => undefined);
    await t?.close();
  });

  let nonce = 1n;
  /** A sell of account 0 (a ZONE-A prosumer, solar) signed for this node's market. */
  function sell(energyWh: number, intervalStart: number): { order: Order; signature: Hex } {
    const account = t.node.testAccounts[0]!;
    const order: Order = {
      maker: account.address, side: 1, zone: zoneToHex(account.zone), deliveryStart: BigInt(intervalStart), deliveryEnd: BigInt(intervalStart + 900),
      energyWh: BigInt(energyWh), limitPricePerKWh: 200_000n, source: 1, acceptedSources: 0, minSellerReputationBps: 0, nonce: nonce++, expiry: BigInt(intervalStart),
    };
    return { order, signature: signDigest(hexToBytes(account.privateKey), createOrderHasher(t.node.services.chain.domain)(order)) };
  }

  it("says degraded (503), naming the quarantined book, while the engine trades; then naming the failure once the engine stopped", async () => {
    const http = injectClient(t.node.app);
    const { engine } = t.node;
    const healthy = await http({ url: "/healthz" });
    expect(healthy.status, healthy.text).to.equal(200);
    expect(healthy.json.checks.engine).to.deep.equal({ ok: true, detail: "running" });

    const zoneA = engine.markets.find((m) => m.zone === t.node.testAccounts[0]!.zone)!;
    const now = Math.floor(Date.now() / 1000);
    const interval = nextTradableInterval(zoneA, now) + 1_800;
    // A fault no input should cause: matching an order of 1,234 Wh throws.
    OrderBook.prototype.submit = function (this: OrderBook, input: BookOrderInput, options: SubmitOptions) {
      if (input.sizeWh === 1_234) throw new TypeError("injected: submit failed");
      return originalSubmit.call(this, input, options);
    };
    const poisoned = await engine.placeOrder(sell(1_234, interval), now);
    OrderBook.prototype.submit = originalSubmit;
    expect([poisoned.status, poisoned.reason]).to.deep.equal(["closed", "book_quarantined"]);
    expect(engine.stats().status).to.equal("running");
    // The engine trades on in other books...
    expect((await engine.placeOrder(sell(1_000, interval + 900), now)).status).to.equal("open");
    // ...but health is never "ok" with a quarantined book.
    const quarantined = await http({ url: "/healthz" });
    expect(quarantined.status, quarantined.text).to.equal(503);
    expect(quarantined.json.status).to.equal("degraded");
    expect(quarantined.json.checks.engine.ok).to.equal(false);
    expect(quarantined.json.checks.engine.detail).to.match(new RegExp(`^1 book quarantined: ${zoneA.zone} ${new Date(interval * 1000).toISOString()} \\(operation \\d+, place: TypeError: injected: submit failed\\)$`));
    expect(quarantined.json.checks.database.ok).to.equal(true);

    // The log write fails: the engine stops and refuses every order with engine_failed.
    await sql`alter table engine_ops rename to engine_ops_away`.execute(t.node.services.indexer.db as never);
    let refused: unknown;
    try {
      await engine.placeOrder(sell(1_000, interval + 1_800), now);
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(BaseError);
    expect((refused as BaseError).code).to.equal("engine_failed");
    expect(engine.stats().status).to.equal("failed");
    const stopped = await http({ url: "/healthz" });
    expect(stopped.status, stopped.text).to.equal(503);
    expect(stopped.json.status).to.equal("degraded");
    expect(stopped.json.checks.engine.ok).to.equal(false);
    expect(stopped.json.checks.engine.detail).to.match(/^stopped: every order is refused \(engine_failed\) until a restart; writing operations \d+\.\.\d+ to the log failed \(.*engine_ops.*\)/);
    expect(stopped.json.checks.engine.detail).to.include("1 book quarantined");
  });
});
