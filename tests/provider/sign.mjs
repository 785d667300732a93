// Signs one token per JWS algorithm with the `jose` library (panva), for
// tests/interop.rs: an independent implementation of every algorithm the
// README promises. Prints {"jwks": {...}, "secrets": {alg: base64}, "tokens": {alg: jwt},
// "spki": {alg: PEM}, "pem_tokens": {alg: jwt issued by ISSUER/pem}}.
// Usage: node sign.mjs ISSUER AUDIENCE
import * as jose from 'jose';
import { randomBytes } from 'node:crypto';

const [issuer, audience] = process.argv.slice(2);
const asymmetric = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const hmac = { HS256: 32, HS384: 48, HS512: 64 };
const now = Math.floor(Date.now() / 1000);
const out = { jwks: { keys: [] }, secrets: {}, tokens: {}, spki: {}, pem_tokens: {} };

async function sign(alg, key, typ, iss = issuer) {
  return new jose.SignJWT({ sub: `jose-${alg}` })
    .setProtectedHeader({ alg, kid: `jose-${alg}`, typ })
    .setIssuer(iss).setAudience(audience)
    .setIssuedAt(now).setExpirationTime(now + 600).setJti(`jose-${alg}-${now}`)
    .sign(key);
}

for (const alg of asymmetric) {
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = 'Ed25519';
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, options);
  const jwk = await jose.exportJWK(publicKey);
  out.jwks.keys.push({ ...jwk, alg, kid: `jose-${alg}`, use: 'sig' });
  // RFC 9068 access tokens, as providers issue them.
  out.tokens[alg] = await sign(alg, privateKey, 'at+jwt');
  // The same key as a PEM file in the config, for a second issuer.
  out.spki[alg] = await jose.exportSPKI(publicKey);
  out.pem_tokens[alg] = await sign(alg, privateKey, 'at+jwt', `${issuer}/pem`);
}
for (const [alg, len] of Object.entries(hmac)) {
  const secret = randomBytes(len);
  out.secrets[alg] = secret.toString('base64');
  out.tokens[alg] = await sign(alg, new Uint8Array(secret), 'JWT');
}
process.stdout.write(JSON.stringify(out));
