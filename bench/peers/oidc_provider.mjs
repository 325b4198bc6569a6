// node-oidc-provider as the benchmark's reference token endpoint: client_credentials with
// client_secret_basic, RS256 JWT access tokens (resource indicators, accessTokenFormat 'jwt'),
// served by 2 node:cluster workers like our 2 gunicorn workers.
//
//   PEER_PORT=8102 PEER_CLIENT_ID=... PEER_CLIENT_SECRET=... node oidc_provider.mjs
//
// bench/peers.py copies this file next to the node_modules it installs (ESM resolves bare
// imports from the script's folder) and starts it. The workers share one signing key, made by
// the primary and handed down in the environment.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT || 8102);
const workers = Number(process.env.PEER_WORKERS || 2);
const resource = `http://127.0.0.1:${port}/fhir`;

if (cluster.isPrimary) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'peer', use: 'sig', alg: 'RS256' };
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ PEER_JWK: JSON.stringify(jwk) });
  }
  cluster.on('exit', (worker, code) => {
    console.error(`peer worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: process.env.PEER_CLIENT_ID,
        client_secret: process.env.PEER_CLIENT_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    ttl: { ClientCredentials: 900 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'system/*.rs system/Patient.rs system/Observation.rs',
          audience: resource,
          accessTokenTTL: 900,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1');
}
