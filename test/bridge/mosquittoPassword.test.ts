// Mosquitto's `$7$` password hash: byte for byte what mosquitto_passwd 2.0 writes (a line it
// wrote for "s3cret" is the vector), and a verifier that refuses anything else. A hash we write
// being accepted by a real Mosquitto is in mosquittoAuth.test.ts.
import { expect } from "chai";
import { hashMosquittoPassword, isMosquittoPasswordHash, verifyMosquittoPassword } from "../../bridge/mosquittoPassword.js";

// `mosquitto_passwd -c -b pw.txt alice s3cret` (mosquitto 2.0.11).
const MOSQUITTO_PASSWD_LINE = "alice:$7$101$ep7NNBfjPMj2qq9i$NMiuNVH7i+vZ9hyJNFds+1b6uVPuixN38LMZutKfATA6ROcKgbKOIr0/JghyTmAESjroQg0kptR5xwEc0Vd/zg==";
const VECTOR = MOSQUITTO_PASSWD_LINE.slice("alice:".length);

describe("Mosquitto password hashes", () => {
  it("writes what mosquitto_passwd writes for the same password and salt", () => {
    const salt = Buffer.from("ep7NNBfjPMj2qq9i", "base64");
    expect(hashMosquittoPassword("s3cret", { salt })).to.equal(VECTOR);
  });

  it("verifies mosquitto_passwd's hash and its own, and nothing else", () => {
    expect(verifyMosquittoPassword("s3cret", VECTOR)).to.equal(true);
    expect(verifyMosquittoPassword("s3cret ", VECTOR)).to.equal(false);
    expect(verifyMosquittoPassword("S3cret", VECTOR)).to.equal(false);
    const mine = hashMosquittoPassword("token-1");
    expect(mine).to.match(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(verifyMosquittoPassword("token-1", mine)).to.equal(true);
    expect(verifyMosquittoPassword("token-2", mine)).to.equal(false);
    // Another salt every time: the same token never shows as the same hash.
    expect(hashMosquittoPassword("token-1")).to.not.equal(mine);
  });

  it("refuses malformed, truncated and tampered hashes instead of throwing", () => {
    const [, , iterations, salt, hash] = VECTOR.split("$");
    for (const bad of [
      "", "s3cret", `$6$${salt}$${hash}`, `$7$${iterations}$${salt}`, `$7$0$${salt}$${hash}`, `$7$102$${salt}$${hash}`, `$7$99999999$${salt}$${hash}`,
      `$7$${iterations}$${salt}$${hash!.slice(4)}`, `$7$${iterations}$${salt}$${hash}\n`, `$7$${iterations}$!!$${hash}`,
    ]) {
      expect(verifyMosquittoPassword("s3cret", bad), JSON.stringify(bad)).to.equal(false);
    }
    expect(isMosquittoPasswordHash(VECTOR)).to.equal(true);
    expect(isMosquittoPasswordHash(`${VECTOR}\nbob:x`)).to.equal(false);
    expect(() => hashMosquittoPassword("x", { iterations: 0 })).to.throw(RangeError);
  });
});
