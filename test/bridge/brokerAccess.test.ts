// The broker's rights table: who may publish and subscribe where, and the topic matching both
// brokers rely on (a subscription is allowed only when it is no wider than a right).
import { expect } from "chai";
import { brokerRights, filterWithin, mayPublish, maySubscribe, mqttUrlCredential, mqttUrlWithCredential, mqttUrlWithoutCredential, topicMatches } from "../../bridge/brokerAccess.js";

const R = "energy-cloud";

describe("broker rights", () => {
  it("matches topics the MQTT way", () => {
    expect(topicMatches(`${R}/+/smart-meter/+/+`, `${R}/wbg/smart-meter/SM-1/export`)).to.equal(true);
    expect(topicMatches(`${R}/+/smart-meter/+/+`, `${R}/wbg/smart-meter/SM-1/export/x`)).to.equal(false);
    expect(topicMatches(`${R}/dead-letter/#`, `${R}/dead-letter/wbg/smart-meter/SM-1/export`)).to.equal(true);
    expect(topicMatches(`${R}/dead-letter/#`, `${R}/dead-letter`)).to.equal(true);
    expect(topicMatches("#", "$SYS/broker/uptime")).to.equal(false);
  });

  it("allows a subscription only when it is no wider than a right", () => {
    const own = `${R}/+/battery/BAT-1/command`;
    expect(filterWithin(own, own)).to.equal(true);
    expect(filterWithin(`${R}/wbg/battery/BAT-1/command`, own)).to.equal(true);
    expect(filterWithin(`${R}/+/battery/+/command`, own)).to.equal(false);
    expect(filterWithin(`${R}/#`, own)).to.equal(false);
    expect(filterWithin(`${R}/+/battery/BAT-1/#`, own)).to.equal(false);
    expect(filterWithin(`${R}/+/battery/BAT-1/command/x`, own)).to.equal(false);
    expect(filterWithin(`${R}/+/battery/BAT-1`, own)).to.equal(false);
    expect(filterWithin(`${R}/dead-letter/wbg/#`, `${R}/dead-letter/#`)).to.equal(true);
    expect(filterWithin("$SYS/#", "#")).to.equal(false);
  });

  it("a meter publishes its own readings and status and reads its own commands, nothing else", () => {
    const meter = brokerRights({ role: "device", username: "SM-1", deviceType: "smart-meter", deviceId: "SM-1", region: null }, R);
    for (const m of ["export", "import", "interval", "status"]) expect(mayPublish(meter, `${R}/wbg/smart-meter/SM-1/${m}`), m).to.equal(true);
    expect(mayPublish(meter, `${R}/wbg/smart-meter/SM-2/export`)).to.equal(false);
    expect(mayPublish(meter, `${R}/wbg/battery/SM-1/export`)).to.equal(false);
    expect(mayPublish(meter, `${R}/wbg/smart-meter/SM-1/command`)).to.equal(false);
    expect(mayPublish(meter, `${R}/dead-letter/wbg/smart-meter/SM-2/export`)).to.equal(false);
    expect(mayPublish(meter, `other/wbg/smart-meter/SM-1/export`)).to.equal(false);
    expect(maySubscribe(meter, `${R}/+/smart-meter/SM-1/command`)).to.equal(true);
    expect(maySubscribe(meter, `${R}/+/smart-meter/SM-2/command`)).to.equal(false);
    expect(maySubscribe(meter, `${R}/+/smart-meter/+/export`)).to.equal(false);
    expect(maySubscribe(meter, `${R}/dead-letter/#`)).to.equal(false);
    const regional = brokerRights({ role: "device", username: "SM-1", deviceType: "smart-meter", deviceId: "SM-1", region: "wbg" }, R);
    expect(mayPublish(regional, `${R}/wbg/smart-meter/SM-1/export`)).to.equal(true);
    expect(mayPublish(regional, `${R}/ber/smart-meter/SM-1/export`)).to.equal(false);
  });

  it("the bridge reads readings and statuses and writes commands, dead letters and metrics; a monitor only reads the latter two", () => {
    const bridge = brokerRights({ role: "bridge", username: "bridge" }, R);
    expect(maySubscribe(bridge, `${R}/+/smart-meter/+/+`)).to.equal(true);
    expect(maySubscribe(bridge, `${R}/+/+/+/status`)).to.equal(true);
    expect(maySubscribe(bridge, `${R}/#`)).to.equal(false);
    expect(mayPublish(bridge, `${R}/wbg/battery/BAT-1/command`)).to.equal(true);
    expect(mayPublish(bridge, `${R}/dead-letter/wbg/smart-meter/SM-1/export`)).to.equal(true);
    expect(mayPublish(bridge, `${R}/bridge/meter-bridge/metrics`)).to.equal(true);
    expect(mayPublish(bridge, `${R}/wbg/smart-meter/SM-1/export`)).to.equal(false);
    const monitor = brokerRights({ role: "monitor", username: "ops" }, R);
    expect(monitor.publish).to.deep.equal([]);
    expect(maySubscribe(monitor, `${R}/dead-letter/#`)).to.equal(true);
    expect(maySubscribe(monitor, `${R}/bridge/+/metrics`)).to.equal(true);
    expect(maySubscribe(monitor, `${R}/+/smart-meter/+/+`)).to.equal(false);
  });

  it("reads and writes the userinfo of an MQTT URL", () => {
    expect(mqttUrlCredential("mqtt://bridge:s%40cret@host:1883")).to.deep.equal({ username: "bridge", password: "s@cret" });
    expect(mqttUrlCredential("mqtt://host:1883")).to.equal(undefined);
    const url = mqttUrlWithCredential("mqtt://127.0.0.1:1883", { username: "bridge", password: "a/b:c" });
    expect(mqttUrlCredential(url)).to.deep.equal({ username: "bridge", password: "a/b:c" });
    expect(mqttUrlWithoutCredential(url)).to.equal("mqtt://127.0.0.1:1883");
  });
});
