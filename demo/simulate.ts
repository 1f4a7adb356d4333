// `npm run simulate -- [options]`: a live community of simulated homes trading in real time
// against a node already running (`npm start`), see simulateLive.ts. Progress goes to stderr,
// one line per interval. Ctrl-C (SIGINT) or SIGTERM stops it: no more orders, open ones are
// cancelled, MQTT disconnects, and the process ends by itself with exit code 0 (a second signal
// exits at once with 130). Exits 1 on a failure, 2 on bad options.
import { BaseError } from "../lib/errors.js";
import { simulateLive, type SimulateLiveOptions } from "./simulateLive.js";

const USAGE = `usage: npm run simulate -- [options]
  --households N    homes in the community (default 20)
  --url URL         the node's API (default ENERGY_API_URL, else http://127.0.0.1:8080)
  --seed N          with --households, names the community: wallets, meters, assets (default 1)
  --mqtt URL        the node bridge's MQTT broker (default MQTT_URL, else the one the node's /healthz names)
  --topic-root T    the bridge's topic root (default BRIDGE_TOPIC_ROOT or energy-cloud)
  --under-delivering F  share of each zone's sellers that deliver less than they sold (default 0.2)`;

class UsageError extends BaseError {
  override name = "UsageError";
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): SimulateLiveOptions {
  const options: SimulateLiveOptions = { url: (env.ENERGY_API_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "") };
  if (env.MQTT_URL) options.mqttUrl = env.MQTT_URL;
  if (env.BRIDGE_TOPIC_ROOT) options.topicRoot = env.BRIDGE_TOPIC_ROOT;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const whole = (v: string) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`${flag} needs a whole number, got ${JSON.stringify(v)}`);
      return Number(v);
    };
    switch (flag) {
      case "--households": options.households = whole(value()); break;
      case "--seed": options.seed = whole(value()); break;
      case "--url": {
        const v = value();
        if (!/^http:\/\/[^/]+\/?$/.test(v)) throw new UsageError(`--url must be the node's http://host:port, got ${JSON.stringify(v)}`);
        options.url = v.replace(/\/$/, "");
        break;
      }
      case "--mqtt": options.mqttUrl = value(); break;
      case "--topic-root": options.topicRoot = value(); break;
      case "--under-delivering": {
        const v = Number(value());
        if (!(v >= 0 && v <= 1)) throw new UsageError("--under-delivering needs a share from 0 to 1");
        options.underDeliveringShare = v;
        break;
      }
      case "--help": case "-h":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  let options: SimulateLiveOptions;
  try {
    options = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`simulate: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write(`simulate: ${signal}: stopping (again to quit at once)\n`);
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = Date.now();
  await simulateLive({ ...options, signal: stop.signal, progress: (line) => process.stderr.write(`simulate: [+${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`) });
  // Nothing may be left running: the process ends on its own once the handlers are gone.
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}

main().catch((err: unknown) => {
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`simulate: ${message}\n`);
  process.exit(err instanceof BaseError && err.code === "validation_failed" ? 2 : 1);
});
