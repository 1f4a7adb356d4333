// Where the measured series the project ships live: data/ at the repository root (sources,
// licences and cleaning in data/README.md). Every reader takes its path from here, so the data
// travel with the checkout and nothing reads outside it.
import path from "node:path";
import { fileURLToPath } from "node:url";

export const DATA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../data");

/** One household near Paris, kWh per hour, 2006-12-16 to 2009-12-31 (UCI). */
export const HOUSEHOLD_LOAD_CSV = path.join(DATA_DIR, "household-hourly-kwh-2006-2009.csv");

/** The AEP zone of PJM, MW per hour, 2004-10-01 to 2006-12-31. */
export const AEP_LOAD_CSV = path.join(DATA_DIR, "aep-system-hourly-mw-2004-2006.csv");
