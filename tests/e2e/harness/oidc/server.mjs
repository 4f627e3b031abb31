// A real OAuth 2.1 authorization server for the Portcullis authentication tests: npm
// `oidc-provider`, configured for the client-credentials grant with RFC 8707 resource
// indicators.
//
//   node server.mjs [PORT]        (PORT 0 or absent: any free port on 127.0.0.1)
//
// Prints one line when ready, then serves until killed:
//   ready {"issuer": "...", "jwks_uri": "...", "token_endpoint": "...", "introspection_endpoint": "...", "rotate_endpoint": "..."}
//
// Clients (client_secret_basic):
//   jwt-client / jwt-client-secret          tokens are RS256 JWT access tokens (typ at+jwt),
//                                            aud = the requested `resource`
//   opaque-client / opaque-client-secret    tokens are opaque; check them by introspection
//   gateway / gateway-secret                the resource server's own credentials for the
//                                            introspection endpoint
// Scopes: "mcp" and "tools:read" (request them with `scope`). Tokens live 300 s.
//
// POST /_harness/rotate replaces the signing key (new kid; the old one disappears from the
// JWKS) and answers {"kid": "..."}. Opaque tokens issued before are forgotten with it.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const SCOPES = 'mcp tools:read';

const clients = [
  { client_id: 'jwt-client', client_secret: 'jwt-client-secret' },
  { client_id: 'opaque-client', client_secret: 'opaque-client-secret' },
  { client_id: 'gateway', client_secret: 'gateway-secret' },
].map((c) => ({
  ...c,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPES,
}));

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `rs-${crypto.randomBytes(6).toString('hex')}`,
    alg: 'RS256',
    use: 'sig',
  };
}

function provider(issuer, key) {
  const p = new Provider(issuer, {
    clients,
    jwks: { keys: [key] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    scopes: SCOPES.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => ({
          scope: SCOPES,
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: client.clientId === 'opaque-client' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    ttl: { ClientCredentials: 300 },
  });
  p.on('server_error', (ctx, err) => console.error('oidc server_error:', err));
  return p;
}

// Each start-up step is logged with its time on stderr, so a slow start names the slow step.
const started = performance.now();
const step = (what) => console.error(`oidc start: ${what} after ${Math.round(performance.now() - started)} ms`);

const port = Number(process.argv[2] ?? 0);
const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  step('listening');
  const issuer = `http://127.0.0.1:${server.address().port}`;
  let key = signingKey();
  step('signing key generated');
  let handler = provider(issuer, key).callback();
  step('provider built');
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/_harness/rotate') {
      key = signingKey();
      handler = provider(issuer, key).callback();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: key.kid }));
      return;
    }
    handler(req, res);
  });
  const ready = {
    issuer,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    introspection_endpoint: `${issuer}/token/introspection`,
    rotate_endpoint: `${issuer}/_harness/rotate`,
    kid: key.kid,
  };
  console.log(`ready ${JSON.stringify(ready)}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
