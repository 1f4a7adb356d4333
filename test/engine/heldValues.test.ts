// What the engine holds of an order is the order's own: not the text it was cut from. V8 keeps a
// slice of a long string as a view of the whole, so an order id cut from a worker's batch answer,
// or a zone cut from a request, would keep the whole answer or request alive for as long as the
// order is held (a soak's heap snapshot found ~260 B an order of batch text behind the ids).
// Each test builds the long texts, keeps what the engine keeps, collects garbage and measures.
import { expect } from "chai";
import v8 from "node:v8";
import vm from "node:vm";
import type { Address, Hex } from "viem";
import { decodeRecoveryResult } from "../../engine/intake/signatureBatch.js";
import { makeOrder, memoryEngine, signer, testDomain, wallet, INTERVAL } from "./helpers.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const MB = 1024 * 1024;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A string of `bytes` characters that no other string shares: `head` and filler. */
function longText(head: string, bytes: number, seed: number): string {
  return head + `${seed}`.padStart(12, "0").repeat(Math.ceil(bytes / 12));
}

describe("engine: held values are the order's own", () => {
  it("a digest read from a worker's batch answer does not keep the answer alive", () => {
    const kept: Hex[] = [];
    const before = heapAfterGc();
    for (let b = 0; b < 60; b++) {
      // One answer line per order in the batch: the digest, then the signer.
      const digest = `0x${b.toString(16).padStart(64, "0")}`;
      const answer = `${digest}0x${"ab".repeat(20)}\n${longText("", MB, b)}`;
      const first = decodeRecoveryResult(answer.split("\n")[0]!);
      if (first instanceof Error) throw first;
      expect(first.digest).to.equal(digest);
      kept.push(first.digest);
    }
    const grown = (heapAfterGc() - before) / MB;
    // 60 answers of 1 MB each: as views the digests would hold all 60.
    expect(grown).to.be.lessThan(10);
    expect(kept).to.have.length(60);
  });

  it("placed orders point at the market's zone and the maker's held address, not at the request's copies", async () => {
    const { engine, opened } = await memoryEngine();
    const sign = signer(testDomain);
    const makers = ["erin", "frank"].map(wallet);
    const before = heapAfterGc();
    for (let i = 0; i < 80; i++) {
      const w = makers[i % 2]!;
      const base = makeOrder(w, 1, 100 + i, 190_000 + i, { expiry: BigInt(INTERVAL) });
      // As a request body's parse might leave them: the same text, cut out of a long one.
      const zoneText = longText(base.zone, 256 * 1024, i);
      const makerText = longText(base.maker, 256 * 1024, i + 1_000);
      const order = { ...base, zone: zoneText.slice(0, 66) as Hex, maker: makerText.slice(0, 42) as Address };
      const placed = await engine.placeOrder({ order, signature: sign(w, base) }, INTERVAL - 7_200);
      expect(placed.status).to.equal("open");
    }
    const grown = (heapAfterGc() - before) / MB;
    // 80 orders, each with two 256 KB texts behind it (40 MB) if held as given; the first order
    // of each maker keeps its own (1 MB at most).
    expect(grown).to.be.lessThan(8);
    expect(engine.state.orders.size).to.equal(80);
    await opened.close();
  });
});
