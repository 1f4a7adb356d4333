// The READMEs' commands stay runnable: every `npm run X` a README shows is a package.json script
// that `npm run check:readme` (CI, before `npm test`) runs in a fresh copy at a small size, and
// nothing in the project reads files from outside its own folder.
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { checkedElsewhere, readmeCommands } from "../../scripts/checkReadmeCommands.js";
import { projectRoot } from "./spawnStart.js";

const READMES = ["README.md", "bridge/README.md", "indexer/README.md", "engine/README.md", "data/README.md"];

async function readmeScripts(): Promise<Set<string>> {
  const scripts = new Set<string>();
  for (const file of READMES) {
    let text: string;
    try {
      text = await readFile(path.join(projectRoot, file), "utf8");
    } catch {
      continue;
    }
    for (const m of text.matchAll(/\bnpm run ([a-z][a-z:-]*)/g)) scripts.add(m[1]!);
    for (const m of text.matchAll(/\bnpm (start|test)\b/g)) scripts.add(m[1]!);
  }
  return scripts;
}

describe("README commands", () => {
  it("every npm script a README shows exists and is run by check:readme (or named as checked elsewhere)", async () => {
    const pkg = JSON.parse(await readFile(path.join(projectRoot, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const shown = await readmeScripts();
    expect(shown.size).to.be.greaterThan(10);
    const checked = new Set(readmeCommands.map((c) => c.script));
    for (const script of shown) {
      expect(pkg.scripts, `README shows npm run ${script}`).to.have.property(script);
      expect(checked.has(script) || script in checkedElsewhere, `npm run ${script} is in a README but not in scripts/checkReadmeCommands.ts`).to.equal(true);
    }
    for (const c of readmeCommands) expect(pkg.scripts, `check:readme runs npm run ${c.script}`).to.have.property(c.script);
  });

  it("CI runs the check before the tests", async () => {
    const ci = await readFile(path.join(projectRoot, ".ci/run"), "utf8");
    const check = ci.indexOf("npm run check:readme");
    expect(check, ".ci/run runs npm run check:readme").to.be.greaterThan(0);
    expect(check).to.be.lessThan(ci.lastIndexOf("npm test"));
  });

  it("no source, test or script reads files from ../shared (nothing outside the project)", () => {
    expect(gitGrep()).to.equal("");
  });
});

/** Tracked and new files that name ../shared: git grep exits 1 when it finds nothing. */
function gitGrep(): string {
  try {
    return execFileSync("git", ["grep", "--untracked", "-n", "-I", "-e", "../shared", "--", "*.ts", "*.mjs", "*.sh", "*.json", ".ci/run", ":!test/scripts/readmeCommands.test.ts"], { cwd: projectRoot, encoding: "utf8" });
  } catch (err) {
    if ((err as { status?: number }).status === 1) return "";
    throw err;
  }
}
