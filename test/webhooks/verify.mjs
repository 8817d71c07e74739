// Verifies calhook webhook deliveries the way two kinds of receivers do, for
// webhook/node_test.go.
//
// Input: one JSON object per line on stdin, {"secret", "body", "headers"},
// where body is the raw request body as a string and headers maps header
// names to values. Output: one JSON line per input line, in order:
//
//   {"svix": true | "<error message>", "seed": true | false}
//
// svix: the official `svix` npm package, new Webhook(secret).verify(body,
//       headers) — the Standard Webhooks signature, with its timestamp check.
// seed: the Mobile Calendar API's documented verifyWebhookSignature, applied
//       to the X-Calhook-Signature header with the secret string as is.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createInterface } from "node:readline";
import { Webhook } from "svix";

// seedVerify re-implements the Mobile Calendar example: "sha256=" + hex of
// HMAC-SHA256 over the raw body bytes, keyed by the secret string (its UTF-8
// bytes), compared in constant time after a length check. It has no
// timestamp, so stale deliveries still pass.
function seedVerify(rawBody, header, secret) {
  const prefix = "sha256=";
  if (typeof header !== "string" || !header.startsWith(prefix)) return false;
  const hex = header.slice(prefix.length);
  if (!/^[0-9a-fA-F]+$/.test(hex)) return false;
  const want = createHmac("sha256", secret).update(rawBody).digest();
  const got = Buffer.from(hex, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

function svixVerify(secret, body, headers) {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch (err) {
    return String(err?.message ?? err);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  const { secret, body, headers } = JSON.parse(line);
  // Node's http server hands handlers lower-cased header names.
  const lower = Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const raw = Buffer.from(body, "utf8");
  process.stdout.write(
    JSON.stringify({ svix: svixVerify(secret, body, lower), seed: seedVerify(raw, lower["x-calhook-signature"], secret) }) + "\n",
  );
}
