// contracts/client/abi.ts is generated and committed so TypeScript sees typed ABIs without a
// build; this keeps it from drifting from the compiled contracts.
import { expect } from "chai";
import { renderAbiModule } from "../../scripts/export-abis.js";
import { readFile } from "node:fs/promises";

describe("contracts/client/abi.ts", () => {
  it("matches the compiled artifacts (run `npm run build` when this fails)", async () => {
    const committed = await readFile(new URL("../../contracts/client/abi.ts", import.meta.url), "utf8");
    expect(committed === (await renderAbiModule()), "abi.ts is stale").to.equal(true);
  });
});
