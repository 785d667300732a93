"""Signs one token per JWS algorithm with joserfc (authlib's JOSE library),
for tests/interop.rs: a second implementation, independent of `jose` and of
ours. Prints {"jwks": {...}, "secrets": {alg: base64}, "tokens": {alg: jwt}}.
Usage: python3 sign_joserfc.py ISSUER AUDIENCE"""

import base64
import json
import os
import sys
import time

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

issuer, audience = sys.argv[1:3]
now = int(time.time())
out = {"jwks": {"keys": []}, "secrets": {}, "tokens": {}}
# joserfc refuses the non-default algorithms unless they are named.
algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "HS256", "HS384", "HS512"]


def key_for(alg):
    if alg[:2] in ("RS", "PS"):
        return RSAKey.generate_key(2048)
    if alg.startswith("ES"):
        return ECKey.generate_key({"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg])
    return OKPKey.generate_key("Ed25519")


for alg in algorithms:
    kid = f"joserfc-{alg}"
    header = {"alg": alg, "kid": kid, "typ": "at+jwt" if not alg.startswith("HS") else "JWT"}
    claims = {"iss": issuer, "aud": audience, "sub": kid, "iat": now, "exp": now + 600, "jti": f"{kid}-{now}"}
    if alg.startswith("HS"):
        secret = os.urandom({"HS256": 32, "HS384": 48, "HS512": 64}[alg])
        out["secrets"][alg] = base64.b64encode(secret).decode()
        key = OctKey.import_key(secret)
    else:
        key = key_for(alg)
        public = key.as_dict(private=False)
        public.update({"alg": alg, "kid": kid, "use": "sig"})
        out["jwks"]["keys"].append(public)
    out["tokens"][alg] = jwt.encode(header, claims, key, algorithms=algorithms)

sys.stdout.write(json.dumps(out))
