// A real OpenID Provider (panva's certified oidc-provider) for the tests:
// discovery, a JWKS with every signing algorithm and an encryption key (as
// real providers publish), RFC 9068 JWT access tokens and opaque ones from
// the client-credentials grant, RFC 7662 introspection, and back-channel
// logout. Usage: node provider.mjs CONFIG_JSON, where CONFIG_JSON is
// {"port": N, "backchannel_logout_uri": "http://...", "introspection_secret": "..."}.
// Prints "listening <issuer>" once it serves.
//
// Test-only routes: POST /test/logout-token?sub=S&sid=SID&client=C answers
// the logout token itself (to replay it); POST /test/backchannel-logout?sub=S&sid=SID[&client=C]
// makes the provider send its real logout token (Client#backchannelLogout,
// what an end-session does for every client with a back-channel URI) to
// the client's (default `rp`) backchannel_logout_uri, and answers 204, or
// 502 with why.
import { createPublicKey } from 'node:crypto';
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${config.port}`;

async function key(alg, options = {}) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...options });
  return { ...(await jose.exportJWK(privateKey)), alg, use: 'sig', kid: `op-${alg}` };
}
const keys = [
  await key('RS256'), await key('PS256'), await key('ES256'), await key('ES384'),
  await key('EdDSA', { crv: 'Ed25519' }), await key('Ed25519'),
  // Not for us: a provider's encryption key, skipped by tokengate.
  { ...(await jose.exportJWK((await jose.generateKeyPair('RSA-OAEP', { extractable: true })).privateKey)),
    alg: 'RSA-OAEP', use: 'enc', kid: 'op-enc' },
];
const signing = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];

const clients = [
  {
    client_id: 'api-client', client_secret: 'api-client-secret-0123456789abcdef',
    grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
    scope: 'read write',
  },
  {
    // The relying party whose sessions tokengate ends on a back-channel logout.
    client_id: 'rp', client_secret: 'rp-secret-0123456789abcdef0123456789',
    grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
    backchannel_logout_uri: config.backchannel_logout_uri ?? 'http://127.0.0.1:9/none',
    backchannel_logout_session_required: true,
  },
  {
    // tokengate's credentials for introspection (HTTP Basic).
    client_id: 'tokengate', client_secret: config.introspection_secret ?? 'tokengate-introspection-secret-0123',
    grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
  },
  {
    // The same, authenticating with client_secret_post.
    client_id: 'tokengate-post', client_secret: config.introspection_secret ?? 'tokengate-introspection-secret-0123',
    grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  },
];
if (config.web) {
  // With `public_key_pem`, the client authenticates with private_key_jwt
  // (its public key registered here) instead of its secret.
  const pkjwt = config.web.public_key_pem
    ? {
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [{ ...createPublicKey(config.web.public_key_pem).export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: config.web.key_id }] },
    }
    : {};
  clients.push({
    // Browser sign-in through tokengate (its `sessions.browser`).
    client_id: 'web', client_secret: 'web-client-secret-0123456789abcdef',
    ...pkjwt,
    grant_types: ['authorization_code'], response_types: ['code'],
    redirect_uris: [config.web.redirect_uri],
    post_logout_redirect_uris: config.web.post_logout_redirect_uri ? [config.web.post_logout_redirect_uri] : [],
    backchannel_logout_uri: config.web.backchannel_logout_uri,
    backchannel_logout_session_required: true,
    id_token_signed_response_alg: 'ES256',
  });
}

const provider = new Provider(issuer, {
  // oidc-provider refuses to POST to special-use addresses (its SSRF
  // guard); every receiver in the tests is on loopback.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  clients,
  scopes: ['openid', 'offline_access', 'read', 'write', 'email', 'profile'],
  claims: { email: ['email'], profile: ['name'] },
  // The scope's claims in the ID token itself (tokengate copies them into
  // the session), not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  // Any login name is an account; its claims follow from it.
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.test`, name: `User ${id}` }),
  }),
  jwks: { keys },
  enabledJWA: { idTokenSigningAlgValues: signing },
  // `test_sid` on a token request puts that `sid` claim in the access
  // token, as providers that tie access tokens to a login session do
  // (Keycloak), for the tests of `revoke: session`. `test_sub` makes the
  // introspection answer for an opaque token name that subject (the
  // provider names one only for user tokens, which need a browser login).
  extraParams: ['test_sid', 'test_sub'],
  extraTokenClaims: (ctx) => {
    const { test_sid: sid, test_sub: sub } = ctx.oidc.body ?? {};
    if (sid) return { sid };
    if (sub) return { sub };
    return undefined;
  },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    // RFC 7009: clients revoke their tokens at the provider.
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    devInteractions: { enabled: Boolean(config.web) },
    // Makes the provider publish its encryption key, as Keycloak does.
    encryption: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:api:ES256',
      // urn:api:<ALG> issues RFC 9068 JWT access tokens signed with ALG;
      // urn:api:opaque issues opaque ones (introspection only).
      getResourceServerInfo: (ctx, resource) => {
        const alg = resource.replace('urn:api:', '');
        if (alg === 'opaque') {
          return { scope: 'read write', audience: 'urn:api:opaque', accessTokenFormat: 'opaque', accessTokenTTL: 300 };
        }
        if (!signing.includes(alg)) throw new Error(`unknown resource ${resource}`);
        return { scope: 'read write', audience: 'urn:api', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg } } };
      },
      useGrantedResource: () => true,
    },
  },
});

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method === 'POST' && url.pathname === '/test/logout-token') {
    // The logout token backchannelLogout would send, handed to the test
    // instead (to replay it).
    try {
      const client = await provider.Client.find(url.searchParams.get('client') || 'rp');
      const token = new provider.IdToken({ sub: url.searchParams.get('sub') }, { client, ctx: undefined });
      token.mask = { sub: null };
      token.set('events', { 'http://schemas.openid.net/event/backchannel-logout': {} });
      token.set('jti', crypto.randomUUID());
      token.set('sid', url.searchParams.get('sid'));
      res.writeHead(200, { 'content-type': 'text/plain' }).end(await token.issue({ use: 'logout' }));
    } catch (e) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(String(e));
    }
    return;
  }
  if (req.method === 'POST' && url.pathname === '/test/backchannel-logout') {
    try {
      const client = await provider.Client.find(url.searchParams.get('client') || 'rp');
      await client.backchannelLogout(url.searchParams.get('sub'), url.searchParams.get('sid'));
      res.writeHead(204).end();
    } catch (e) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(String(e));
    }
    return;
  }
  callback(req, res);
});
server.listen(config.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
