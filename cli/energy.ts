// `energy`: the prosumer's command line over the SDK (sdk/). Run it with
// `sh scripts/with-node.sh tsx cli/energy.ts <command>` or through cli/bin.mjs.
import { runCli } from "./runCli.js";

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
