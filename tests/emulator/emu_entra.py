"""Entra ID v2.0 token endpoint, the Kubernetes OIDC issuer, and IMDS.

The token endpoint verifies client assertions for real (PROTOCOL.md 1.8):
it finds a federated credential matching iss/sub/aud, fetches the issuer's
discovery document and JWKS over HTTPS as Entra does, checks the RS256
signature and exp/nbf. Certificate assertions (RS256+x5t, PS256+x5t#S256)
and client secrets are checked against the registered app. Answers have the
shapes of PROTOCOL.md 1.4/1.5; IMDS answers with numbers as strings.
"""

import base64
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from emu_crypto import (JwtError, RsaKey, b64url_encode, jwt_decode_unverified,
                        jwt_encode, rsa_verify)
from emu_http import send_json

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 300  # seconds Entra tolerates on exp/nbf

AADSTS = {
    # code: (error, http status, description)
    90002: ("invalid_request", 400, "Tenant '{tenant}' not found."),
    70003: ("unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant}'."),
    700016: ("unauthorized_client", 400,
             "Application with identifier '{client}' was not found in the directory '{tenant}'."),
    70011: ("invalid_scope", 400, "The provided value for the input parameter 'scope' is not valid. "
            "The scope {scope} is not valid."),
    # A well-formed RESOURCE/.default whose resource is no service principal
    # of the tenant (a gateway's host, a test endpoint).
    500011: ("invalid_resource", 400, "The resource principal named {resource} was not found in "
             "the tenant named {tenant}. This can happen if the application has not been "
             "installed by the administrator of the tenant or consented to by any user in the "
             "tenant. You might have sent your authentication request to the wrong tenant."),
    70021: ("invalid_client", 401, "No matching federated identity record found for presented "
            "assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'."),
    700024: ("invalid_client", 401, "Client assertion is not within its valid time range. "
             "Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."),
    700027: ("invalid_client", 401, "Client assertion failed signature validation."),
    7000215: ("invalid_client", 401, "Invalid client secret provided. Ensure the secret being sent "
              "in the request is the client secret value, not the client secret ID."),
    7000218: ("invalid_client", 401, "The request body must contain the following parameter: "
              "'client_assertion' or 'client_secret'."),
    90061: ("invalid_request", 400, "Request to External OIDC endpoint failed."),
    50027: ("invalid_request", 400, "JWT token is invalid or malformed."),
}


class EntraError(Exception):
    def __init__(self, code, **fmt):
        super().__init__(code)
        self.code = code
        self.fmt = fmt


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Entra:
    """State: tenant, registered clients, federated credentials, signing key."""

    def __init__(self, emu, state_dir, tenant_id, client_id, token_lifetime):
        self.emu = emu
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.token_lifetime = token_lifetime
        self.lock = threading.Lock()
        self.key = RsaKey.generate(f"{state_dir}/entra-signing.key")
        self.clients = {}     # client_id -> {"secrets": [...], "certs": {thumb: RsaKey}, "fics": [...]}
        self.token_log = []   # one entry per token request (never the secret material)
        self.jwks_cache = {}  # issuer -> (fetched_at, {kid: RsaKey})
        self.unreachable_issuers = set()  # discovery fails for these (AADSTS90061)

    def token_keys(self):
        return {self.key.kid(): self.key.public()}

    def register_client(self, client_id, secrets=(), certs=(), fics=()):
        with self.lock:
            self.clients[client_id] = {"secrets": list(secrets), "certs": dict(certs),
                                       "fics": list(fics)}

    def add_fic(self, client_id, issuer, subject, audience="api://AzureADTokenExchange"):
        with self.lock:
            self.clients[client_id]["fics"].append(
                {"issuer": issuer, "subject": subject, "audiences": [audience]})
            self.jwks_cache.pop(issuer, None)

    def remove_fic(self, client_id, issuer, subject, audience="api://AzureADTokenExchange"):
        with self.lock:
            fics = self.clients[client_id]["fics"]
            keep = [f for f in fics if (f["issuer"], f["subject"], f["audiences"][0])
                    != (issuer, subject, audience)]
            self.clients[client_id]["fics"] = keep
            return len(keep) != len(fics)

    def clear_fics(self, client_id):
        with self.lock:
            self.clients[client_id]["fics"] = []

    def list_fics(self, client_id):
        with self.lock:
            return [dict(f) for f in self.clients[client_id]["fics"]]

    def set_issuer_unreachable(self, issuer, unreachable=True):
        """Makes Entra's fetch of this issuer's discovery document fail, as
        when a cluster's issuer is private or down (AADSTS90061)."""
        with self.lock:
            if unreachable:
                self.unreachable_issuers.add(issuer)
            else:
                self.unreachable_issuers.discard(issuer)
            self.jwks_cache.pop(issuer, None)

    def mint_access_token(self, client_id, audience, roles=("Sites.Selected",), oid=None):
        now = int(time.time())
        payload = {"aud": audience, "iss": f"https://sts.windows.net/{self.tenant_id}/",
                   "iat": now, "nbf": now, "exp": now + self.token_lifetime,
                   "aio": "emulated", "appid": client_id, "appidacr": "2",
                   "idp": f"https://sts.windows.net/{self.tenant_id}/",
                   "oid": oid or str(uuid.uuid5(uuid.NAMESPACE_OID, client_id)),
                   "roles": list(roles), "sub": oid or str(uuid.uuid5(uuid.NAMESPACE_OID, client_id)),
                   "tid": self.tenant_id, "uti": b64url_encode(uuid.uuid4().bytes), "ver": "1.0"}
        return jwt_encode({"typ": "JWT", "alg": "RS256", "kid": self.key.kid()}, payload, self.key)

    # ---- issuer discovery, as Entra does it: over public HTTPS ----
    def _issuer_keys(self, issuer):
        if issuer in self.unreachable_issuers:
            raise EntraError(90061)
        cached = self.jwks_cache.get(issuer)
        if cached and time.time() - cached[0] < 60:
            return cached[1]
        ctx = ssl.create_default_context(cafile=self.emu.ca_file)
        try:
            with urllib.request.urlopen(issuer + ".well-known/openid-configuration",
                                        context=ctx, timeout=5) as r:
                disc = json.load(r)
            if disc.get("issuer") != issuer:
                raise EntraError(90061)
            with urllib.request.urlopen(disc["jwks_uri"], context=ctx, timeout=5) as r:
                jwks = json.load(r)
            keys = {k["kid"]: RsaKey.from_jwk(k) for k in jwks.get("keys", [])[:100]
                    if k.get("kty") == "RSA"}
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            raise EntraError(90061) from None
        self.jwks_cache[issuer] = (time.time(), keys)
        return keys


class EntraApp:
    """Routes of the login host."""

    def __init__(self, emu, entra):
        self.emu = emu
        self.entra = entra

    def handle(self, req):
        parts = [p for p in req.raw_path.split("/") if p]  # tolerates '//'
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            req.route = "token"
            if self.emu.faults.apply(req):
                return
            if req.method != "POST":
                return send_json(req, 405, {"error": "invalid_request"})
            return self.token(req, parts[0])
        if parts[1:] == ["v2.0", ".well-known", "openid-configuration"] and len(parts) == 4:
            req.route = "openid"
            base = f"{self.emu.authority_host}{parts[0]}"
            return send_json(req, 200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{self.emu.authority_host}{self.entra.tenant_id}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "id_token_signing_alg_values_supported": ["RS256"]})
        if parts[1:] == ["discovery", "v2.0", "keys"]:
            req.route = "openid"
            return send_json(req, 200, {"keys": [self.entra.key.public_jwk()]})

    def token(self, req, tenant):
        form = dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        entry = {"t": time.time(), "grant": form.get("grant_type"),
                 "client_id": form.get("client_id"), "method": None, "result": None}
        try:
            token = self._token(req, tenant, form, entry)
            entry["result"] = "ok"
            send_json(req, 200, {"token_type": "Bearer", "expires_in": self.entra.token_lifetime,
                                 "ext_expires_in": self.entra.token_lifetime,
                                 "access_token": token},
                      {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        except EntraError as e:
            entry["result"] = "error"
            entry["aadsts"] = e.code
            self._error(req, e, tenant, form)
        finally:
            with self.entra.lock:
                self.entra.token_log.append(entry)

    def _token(self, req, tenant, form, entry):
        ent = self.entra
        if tenant not in (ent.tenant_id, "organizations") and not tenant.endswith(".onmicrosoft.com"):
            raise EntraError(90002, tenant=tenant)
        if form.get("grant_type") != "client_credentials":
            raise EntraError(70003, grant=form.get("grant_type"))
        # HTTP Basic is an accepted way to send a secret (RFC 6749).
        basic = req.header("Authorization") or ""
        if basic.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                form.setdefault("client_id", urllib.parse.unquote(cid))
                form.setdefault("client_secret", urllib.parse.unquote(secret))
            except ValueError:
                raise EntraError(50027) from None
        client_id = form.get("client_id", "")
        entry["client_id"] = client_id
        scopes = form.get("scope", "").split()
        resource_scopes = [s for s in scopes if s not in ("openid", "offline_access", "profile")]
        if len(resource_scopes) != 1 or not resource_scopes[0].endswith("/.default"):
            raise EntraError(70011, scope=form.get("scope", ""))
        if resource_scopes[0][:-len("/.default")] not in self.emu.graph_audiences():
            raise EntraError(500011, resource=resource_scopes[0][:-len("/.default")])
        audience = resource_scopes[0][:-len("/.default")]
        client = ent.clients.get(client_id)
        if client is None:
            raise EntraError(700016, client=client_id, tenant=tenant)

        if "client_secret" in form:
            entry["method"] = "secret"
            if form["client_secret"] not in client["secrets"]:
                raise EntraError(7000215)
            return ent.mint_access_token(client_id, audience)
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise EntraError(7000218)
        try:
            header, payload, signing_input, sig = jwt_decode_unverified(form["client_assertion"])
        except JwtError:
            raise EntraError(50027) from None
        if "x5t" in header or "x5t#S256" in header:
            entry["method"] = "certificate"
            self._check_certificate(req, tenant, client, client_id, header, payload,
                                    signing_input, sig)
        else:
            entry["method"] = "federated"
            entry["assertion_jti"] = payload.get("jti")
            entry["assertion_iat"] = payload.get("iat")
            entry["assertion_sub"] = payload.get("sub")
            self._check_federated(client, header, payload, signing_input, sig)
        return ent.mint_access_token(client_id, audience)

    @staticmethod
    def _check_times(payload):
        now = time.time()
        exp, nbf = payload.get("exp"), payload.get("nbf", payload.get("iat", 0))
        if not isinstance(exp, (int, float)) or exp + SKEW < now or \
                (isinstance(nbf, (int, float)) and nbf - SKEW > now):
            raise EntraError(700024, now=_iso(now), nbf=_iso(nbf or 0), exp=_iso(exp or 0))

    def _check_federated(self, client, header, payload, signing_input, sig):
        iss, sub = payload.get("iss"), payload.get("sub")
        aud = payload.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        fic = next((f for f in client["fics"] if f["issuer"] == iss and f["subject"] == sub
                    and f["audiences"][0] in auds), None)
        if fic is None:
            raise EntraError(70021, iss=iss, sub=sub, aud=aud)
        keys = self.entra._issuer_keys(iss)
        key = keys.get(header.get("kid"))
        if header.get("alg") != "RS256" or key is None or \
                not rsa_verify(key, signing_input, sig, "RS256"):
            raise EntraError(700027)
        self._check_times(payload)

    def _check_certificate(self, req, tenant, client, client_id, header, payload,
                           signing_input, sig):
        thumb = header.get("x5t#S256") or header.get("x5t")
        try:
            # The doc says base64url, MSAL Go sends standard base64: accept both.
            raw = base64.b64decode(thumb + "=" * (-len(thumb) % 4), altchars=b"-_") \
                if any(c in thumb for c in "-_") else base64.b64decode(thumb + "=" * (-len(thumb) % 4))
        except (ValueError, TypeError):
            raise EntraError(700027) from None
        kind = "sha256" if "x5t#S256" in header else "sha1"
        key = client["certs"].get((kind, raw))
        alg = header.get("alg")
        if key is None or alg not in ("RS256", "PS256") or \
                not rsa_verify(key, signing_input, sig, alg):
            raise EntraError(700027)
        token_url = f"{self.emu.authority_host}{tenant}/oauth2/v2.0/token"
        aud = payload.get("aud")
        if aud != token_url or payload.get("iss") != client_id or payload.get("sub") != client_id:
            raise EntraError(700027)
        self._check_times(payload)

    def _error(self, req, e, tenant, form):
        error, status, desc = AADSTS[e.code]
        fmt = {"tenant": tenant, "client": form.get("client_id"), "scope": form.get("scope"),
               "grant": form.get("grant_type"), "iss": "", "sub": "", "aud": "", "now": "",
               "nbf": "", "exp": ""}
        fmt.update(e.fmt)
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        send_json(req, status, {
            "error": error,
            "error_description": f"AADSTS{e.code}: {desc.format(**fmt)}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
            "error_codes": [e.code], "timestamp": stamp, "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"{self.emu.authority_host}error?code={e.code}"},
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


class IssuerApp:
    """The cluster's OIDC issuer: discovery document and JWKS."""

    def __init__(self, emu):
        self.emu = emu

    def handle(self, req):
        base = urllib.parse.urlsplit(self.emu.oidc_issuer).path  # "/issuer/"
        if req.raw_path == base + ".well-known/openid-configuration":
            req.route = "oidc"
            return send_json(req, 200, {
                "issuer": self.emu.oidc_issuer,
                "jwks_uri": self.emu.oidc_issuer + "openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]})
        if req.raw_path == base + "openid/v1/jwks":
            req.route = "oidc"
            return send_json(req, 200, {"keys": [k.public_jwk() for k in self.emu.issuer_keys]})


class ImdsApp:
    """Instance metadata service token endpoint (plain HTTP, like the real one)."""

    def __init__(self, emu, entra):
        self.emu = emu
        self.entra = entra

    def handle(self, req):
        if req.raw_path.lower() != "/metadata/identity/oauth2/token":
            return
        req.route = "imds"
        if self.emu.faults.apply(req):
            return
        entry = {"t": time.time(), "grant": "imds", "client_id": req.q("client_id"),
                 "method": "imds", "result": "error"}
        try:
            self._handle(req, entry)
        finally:
            with self.entra.lock:
                self.entra.token_log.append(entry)

    def _handle(self, req, entry):
        def bad(desc, error="invalid_request", status=400):
            send_json(req, status, {"error": error, "error_description": desc})

        if req.header("Metadata") != "true":
            return bad("Required metadata header not specified", "bad_request_102")
        if not req.q("api-version"):
            return bad("Required query variable 'api-version' is missing")
        resource = (req.q("resource") or "").rstrip("/")
        if resource not in self.emu.graph_audiences():
            return bad(f"Invalid resource {resource!r}", "invalid_resource")
        selectors = [k for k in ("client_id", "object_id", "msi_res_id") if req.q(k)]
        if len(selectors) > 1:
            return bad("Only one of client_id, object_id, msi_res_id may be given")
        identity = self.emu.imds_identities.get(req.q(selectors[0]) if selectors else None)
        if identity is None:
            return bad("Identity not found")
        token = self.entra.mint_access_token(identity["client_id"], resource)
        now = int(time.time())
        lifetime = self.entra.token_lifetime
        entry["result"] = "ok"
        entry["client_id"] = identity["client_id"]
        send_json(req, 200, {"access_token": token, "client_id": identity["client_id"],
                             "expires_in": str(lifetime), "expires_on": str(now + lifetime),
                             "ext_expires_in": str(lifetime), "not_before": str(now),
                             "resource": resource, "token_type": "Bearer"})
