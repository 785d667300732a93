// A development OpenID Provider for the browser sign-in walk-through
// (docker-compose.browser.yaml): panva's certified oidc-provider with its
// development login and consent pages, which accept any user name and any
// password. One client, `web`, for tokengate. NOT for production: accounts
// are whatever anyone types, and state lives in memory.
//
// Environment: ISSUER (the URL browsers and tokengate both reach it at),
// PORT, APP_URL (the app's public origin through tokengate),
// BACKCHANNEL_URL (where tokengate receives logout tokens),
// CLIENT_SECRET_FILE (shared with tokengate).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const issuer = process.env.ISSUER ?? 'http://oidc.localhost:9000';
const port = Number(process.env.PORT ?? 9000);
const app = process.env.APP_URL ?? 'http://localhost:8080';
const secret = fs.readFileSync(process.env.CLIENT_SECRET_FILE ?? '/secrets/web-client-secret', 'utf8').trim();

// A new signing key at each start: a restart rotates it, which tokengate
// follows by kid.
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: `dev-${Date.now()}` };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'web',
    client_secret: secret,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${app}/.tokengate/callback`],
    post_logout_redirect_uris: [`${app}/`],
    backchannel_logout_uri: process.env.BACKCHANNEL_URL ?? 'http://tokengate:8080/.tokengate/backchannel-logout',
    backchannel_logout_session_required: true,
    id_token_signed_response_alg: 'ES256',
  }],
  // tokengate is on the compose network, a private address the provider
  // would otherwise refuse to POST logout tokens to.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'email', 'profile'],
  claims: { email: ['email'], profile: ['name'] },
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.test`, name: id }),
  }),
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
  },
});
http.createServer(provider.callback()).listen(port, '0.0.0.0', () => console.log(`listening ${issuer}`));
