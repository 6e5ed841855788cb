// Verifies webhooks as a receiver would, for Docket's integration tests.
//
// Reads {"cases": [{"key": "whsec_..." | "whpk_...", "headers": {...}, "body": "..."}]} on
// standard input and prints {"results": [{"ok": true} | {"ok": false, "error": "..."}]}.
// HMAC-SHA256 (v1) signatures are checked by the Standard Webhooks reference library; ed25519
// (v1a) signatures, which that library does not check, with Node's own crypto module, applying
// the same rules: the signed content is "{id}.{timestamp}.{body}", the timestamp must be within
// five minutes, and one of the space-separated signatures must match.
"use strict";

const crypto = require("node:crypto");
const { Webhook } = require("standardwebhooks");

const TOLERANCE_SECONDS = 5 * 60;

function verifyEd25519(publicKey, headers, body) {
  const raw = Buffer.from(publicKey.slice("whpk_".length), "base64");
  if (raw.length !== 32) {
    throw new Error("the public key is not 32 bytes");
  }
  const key = crypto.createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) {
    throw new Error("missing webhook headers");
  }
  const sent = Number.parseInt(timestamp, 10);
  const now = Math.floor(Date.now() / 1000);
  if (!Number.isInteger(sent) || Math.abs(now - sent) > TOLERANCE_SECONDS) {
    throw new Error("timestamp outside the tolerance");
  }
  const content = Buffer.from(`${id}.${timestamp}.${body}`, "utf8");
  const matched = signatures.split(" ").some((versioned) => {
    const [version, signature] = versioned.split(",");
    if (version !== "v1a" || !signature) {
      return false;
    }
    return crypto.verify(null, content, key, Buffer.from(signature, "base64"));
  });
  if (!matched) {
    throw new Error("no matching signature");
  }
}

function verify(testCase) {
  if (testCase.key.startsWith("whsec_")) {
    new Webhook(testCase.key).verify(testCase.body, testCase.headers);
  } else if (testCase.key.startsWith("whpk_")) {
    verifyEd25519(testCase.key, testCase.headers, testCase.body);
  } else {
    throw new Error("unknown key format");
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const { cases } = JSON.parse(input);
  const results = cases.map((testCase) => {
    try {
      verify(testCase);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: String(error.message || error) };
    }
  });
  process.stdout.write(JSON.stringify({ results }));
});
