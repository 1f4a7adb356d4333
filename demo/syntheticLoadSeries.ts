// A synthetic household series for tests that need a load with a known shape (the simulation
// itself replays the measured series in data/, see loadProfile.ts): two years of hourly
// kWh shaped like a household's day (a morning peak around 07:30, a larger evening one around
// 19:30, a later morning at weekends), higher in winter, with seeded noise. loadProfile.ts scales
// it to German levels like the real series; the shape is only typical, not measured.
import { buildHourlySeries, type HourlySeries } from "../engine/forecast/hourlySeries.js";
import { mulberry32 } from "../lib/random.js";

const DAYS = 730;

export function syntheticLoadSeries(seed = 2006): HourlySeries {
  const random = mulberry32(seed);
  const start = Date.UTC(2007, 0, 1) / 3_600_000;
  const readings = Array.from({ length: 24 * DAYS }, (_, k) => {
    const hour = k % 24;
    const day = Math.floor(k / 24);
    // 2007-01-01 was a Monday: days 5 and 6 of each week are the weekend.
    const morning = day % 7 >= 5 ? 9 : 7.5;
    const shape = 0.3 + 0.9 * Math.exp(-((hour - morning) ** 2) / 2) + 1.4 * Math.exp(-((hour - 19.5) ** 2) / 4);
    const season = 1 + 0.3 * Math.cos((2 * Math.PI * day) / 365);
    return { hour: start + k, value: shape * season * (0.7 + 0.6 * random()) };
  });
  return buildHourlySeries("synthetic", readings);
}
