// Mints a pushgate token in a Node.js backend (AuthMode key) with jose
// (npm install jose). The key is the stack's signing-key secret:
//   aws secretsmanager get-secret-value --secret-id <SigningKeySecretId output> \
//     --query SecretString --output text
// Run: PUSHGATE_SIGNING_KEY=… node mint-token.mjs <user> <join> <write>
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';

// join and write are room patterns: a room name, a prefix ending in *, or *.
export function mintToken(key, { user, join = [], write = [], ttl = '15m', issuer = 'pushgate', audience = 'pushgate' }) {
  return new SignJWT({ join, write })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuer(issuer) // the stack's AuthIssuer
    .setAudience(audience) // and AuthAudience
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(key));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [user, join = '', write = ''] = process.argv.slice(2);
  const list = (s) => s.split(',').filter(Boolean);
  console.log(await mintToken(process.env.PUSHGATE_SIGNING_KEY, { user, join: list(join), write: list(write) }));
}
