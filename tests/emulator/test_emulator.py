#!/usr/bin/env python3
"""The emulator's own tests: it must be faithful to PROTOCOL.md, because
spfs is proven against it. Each class runs one real emulator."""

import base64
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import emu_crypto  # noqa: E402
import emu_nginx  # noqa: E402
from emutest import EmulatorCase, request, wait_for  # noqa: E402
from kubelet import mint_sa_token  # noqa: E402
from qxh import file_quickxorhash  # noqa: E402

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenEndpoint(EmulatorCase):
    def assert_aadsts(self, r, code, status=None, error=None):
        body = r.json()
        self.assertEqual(body["error_codes"], [code], body)
        self.assertTrue(body["error_description"].startswith(f"AADSTS{code}: "), body)
        for k in ("error", "trace_id", "correlation_id", "timestamp", "error_uri"):
            self.assertIn(k, body)
        if status:
            self.assertEqual(r.status, status)
        if error:
            self.assertEqual(body["error"], error)

    def issuer_key(self):
        return emu_crypto.RsaKey.load_pem(self.emu["issuer_key"])

    def sa_token(self, **kw):
        return mint_sa_token(kw.pop("key", self.issuer_key()), kw.pop("issuer", self.emu["oidc_issuer"]),
                             kw.pop("namespace", self.emu["sa_namespace"]),
                             kw.pop("sa", self.emu["sa_name"]), **kw)

    def test_workload_identity_success_shape(self):
        r = self.post(self.token_url(), self.workload_form())
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertEqual(body["token_type"], "Bearer")
        self.assertIsInstance(body["expires_in"], int)
        self.assertIn("ext_expires_in", body)
        self.assertIn("no-store", r.header("cache-control"))
        # The access token is a JWT signed by Entra's published key.
        keys = self.get(f"{self.emu['authority_host']}{self.emu['tenant_id']}/discovery/v2.0/keys").json()
        _, claims = emu_crypto.jwt_verify(body["access_token"],
                                          {k["kid"]: emu_crypto.RsaKey.from_jwk(k) for k in keys["keys"]})
        self.assertEqual(claims["appid"], self.emu["client_id"])
        self.assertEqual(claims["tid"], self.emu["tenant_id"])
        self.assertEqual(claims["roles"], ["Sites.Selected"])
        log = self.emu.token_requests()[-1]
        self.assertEqual(log["method"], "federated")
        self.assertEqual(log["assertion_sub"], f"system:serviceaccount:{self.emu['sa_namespace']}:{self.emu['sa_name']}")

    def test_extra_fields_and_double_slashes_tolerated(self):
        form = self.workload_form(client_info="1",
                                  claims='{"access_token":{"xms_cc":{"values":["CP1"]}}}')
        form["scope"] += " openid offline_access profile"
        url = self.emu["authority_host"] + "/" + self.emu["tenant_id"] + "//oauth2/v2.0/token"
        r = self.post(url, form)
        self.assertEqual(r.status, 200, r.body)
        # The public Graph resource is accepted too.
        r = self.post(self.token_url(), self.workload_form(scope="https://graph.microsoft.com/.default"))
        self.assertEqual(r.status, 200, r.body)

    def test_expired_assertion_700024(self):
        r = self.post(self.token_url(), self.workload_form(self.sa_token(now=time.time() - 7200)))
        self.assert_aadsts(r, 700024, 401, "invalid_client")
        r = self.post(self.token_url(), self.workload_form(self.sa_token(now=time.time() + 3600)))
        self.assert_aadsts(r, 700024)

    def test_no_matching_federated_credential_70021(self):
        r = self.post(self.token_url(), self.workload_form(self.sa_token(sa="someone-else")))
        self.assert_aadsts(r, 70021)
        self.assertIn("someone-else", r.json()["error_description"])
        # Issuer compared byte for byte: a missing trailing slash does not match.
        r = self.post(self.token_url(), self.workload_form(
            self.sa_token(issuer=self.emu["oidc_issuer"].rstrip("/"))))
        self.assert_aadsts(r, 70021)
        # Audience must contain api://AzureADTokenExchange.
        r = self.post(self.token_url(), self.workload_form(self.sa_token(audience="api://other")))
        self.assert_aadsts(r, 70021)

    def test_unknown_client_700016(self):
        r = self.post(self.token_url(), self.workload_form(client_id="00000000-0000-0000-0000-000000000000"))
        self.assert_aadsts(r, 700016, 400, "unauthorized_client")

    def test_bad_scope_70011_and_unknown_tenant_90002(self):
        r = self.post(self.token_url(), self.workload_form(scope="https://graph.microsoft.com/User.Read"))
        self.assert_aadsts(r, 70011, 400, "invalid_scope")
        r = self.post(self.token_url(tenant="11111111-1111-1111-1111-111111111111"), self.workload_form())
        self.assert_aadsts(r, 90002, 400)

    def test_sharing_links_resolve_through_shares(self):
        url = self.emu.call("POST", "share", {"path": "reports"})["url"]
        self.assertRegex(url, r"^https://contoso\.sharepoint\.com/:f:/s/Finance/E[\w-]+=*\?e=")
        enc = "u!" + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        r = self.graph(f"/shares/{enc}/driveItem")
        self.assertEqual(r.status, 200, r.body)
        item = r.json()
        self.assertEqual(item["name"], "reports")
        self.assertIn("folder", item)
        self.assertEqual(item["parentReference"]["driveId"], self.emu["drive_id"])
        xlsx = self.emu.call("POST", "share", {"path": "reports/summary.xlsx"})["url"]
        self.assertIn("/:x:/s/Finance/", xlsx)
        gone = "u!" + base64.urlsafe_b64encode(b"https://contoso.sharepoint.com/:f:/s/F/Enope").decode()
        r = self.graph(f"/shares/{gone.rstrip('=')}/driveItem")
        self.assertEqual(r.status, 404)

    def test_unknown_resource_500011(self):
        r = self.post(self.token_url(), self.workload_form(scope="https://apim.contoso.net/.default"))
        self.assert_aadsts(r, 500011, 400, "invalid_resource")
        self.assertIn("https://apim.contoso.net", r.json()["error_description"])

    def test_key_not_in_jwks_700027(self):
        other = emu_crypto.RsaKey.generate(os.path.join(self.tmp, "rogue.key"))
        r = self.post(self.token_url(), self.workload_form(self.sa_token(key=other)))
        self.assert_aadsts(r, 700027, 401, "invalid_client")
        # Tampered payload with the right kid: signature check fails too.
        good = self.sa_token()
        h, p, s = good.split(".")
        claims = json.loads(emu_crypto.b64url_decode(p))
        claims["exp"] += 10
        forged = ".".join([h, emu_crypto.b64url_encode(json.dumps(claims).encode()), s])
        self.assert_aadsts(self.post(self.token_url(), self.workload_form(forged)), 700027)

    def test_issuer_unreachable_90061(self):
        issuer = "https://127.0.0.1:9/unreachable/"
        sub = "system:serviceaccount:x:y"
        self.emu.call("POST", "federated-credentials", {"op": "add", "issuer": issuer, "subject": sub})
        token = mint_sa_token(self.issuer_key(), issuer, "x", "y")
        self.assert_aadsts(self.post(self.token_url(), self.workload_form(token)), 90061, 400)

    def test_federated_credential_remove_and_issuer_toggle(self):
        fic = {"issuer": self.emu["oidc_issuer"],
               "subject": f"system:serviceaccount:{self.emu['sa_namespace']}:{self.emu['sa_name']}"}
        try:
            listed = self.emu.call("POST", "federated-credentials", {"op": "list"})
            self.assertIn(dict(fic, audiences=["api://AzureADTokenExchange"]),
                          listed["federated_credentials"])
            self.emu.call("POST", "federated-credentials", dict(fic, op="remove"))
            self.assert_aadsts(self.post(self.token_url(), self.workload_form()), 70021)
            self.emu.call("POST", "federated-credentials", dict(fic, op="add"))
            self.assertEqual(self.post(self.token_url(), self.workload_form()).status, 200)
            # The configured issuer's discovery document becomes unreachable.
            self.emu.call("POST", "federated-credentials", {"op": "issuer-unreachable"})
            self.assert_aadsts(self.post(self.token_url(), self.workload_form()), 90061, 400)
        finally:
            self.emu.call("POST", "federated-credentials", {"op": "issuer-unreachable", "value": False})
        self.assertEqual(self.post(self.token_url(), self.workload_form()).status, 200)

    def test_throttled_token_endpoint_is_entra_shaped(self):
        self.emu.fault(route="token", kind="throttle", count=1, retry_after=2)
        try:
            r = self.post(self.token_url(), self.workload_form())
            self.assertEqual(r.status, 429)
            self.assertEqual(r.header("retry-after"), "2")
            self.assertEqual(r.json()["error"], "temporarily_unavailable")
        finally:
            self.emu.clear_faults()
        self.assertEqual(self.post(self.token_url(), self.workload_form()).status, 200)

    def test_client_secret_form_and_basic(self):
        with open(self.emu["client_secret_file"], encoding="ascii") as f:
            secret = f.read()
        form = {"grant_type": "client_credentials", "client_id": self.emu["client_id"],
                "client_secret": secret, "scope": self.scope()}
        self.assertEqual(self.post(self.token_url(), form).status, 200)
        form["client_secret"] = "wrong"
        self.assert_aadsts(self.post(self.token_url(), form), 7000215, 401)
        basic = base64.b64encode(f"{self.emu['client_id']}:{secret}".encode()).decode()
        r = self.post(self.token_url(), {"grant_type": "client_credentials", "scope": self.scope()},
                      headers={"Authorization": f"Basic {basic}"})
        self.assertEqual(r.status, 200, r.body)

    def cert_assertion(self, alg, thumb_alg, encode, key_path=None, aud=None):
        key = emu_crypto.RsaKey.load_pem(key_path or self.emu["client_key"])
        thumb = emu_crypto.cert_thumbprint(self.emu["client_cert"], thumb_alg)
        header = {"alg": alg, "typ": "JWT",
                  ("x5t#S256" if thumb_alg == "sha256" else "x5t"): encode(thumb)}
        now = int(time.time())
        payload = {"aud": aud or self.token_url(), "iss": self.emu["client_id"],
                   "sub": self.emu["client_id"], "jti": "j", "nbf": now, "exp": now + 600}
        return emu_crypto.jwt_encode(header, payload, key)

    def test_certificate_assertions(self):
        std = lambda b: base64.b64encode(b).decode()  # noqa: E731 (MSAL Go's encoding)
        for alg, thumb_alg, enc in (("PS256", "sha256", emu_crypto.b64url_encode),
                                    ("PS256", "sha256", std),
                                    ("RS256", "sha1", emu_crypto.b64url_encode)):
            r = self.post(self.token_url(), self.workload_form(self.cert_assertion(alg, thumb_alg, enc)))
            self.assertEqual(r.status, 200, (alg, r.body))
        rogue = os.path.join(self.tmp, "rogue-cert.key")
        emu_crypto.RsaKey.generate(rogue)
        r = self.post(self.token_url(), self.workload_form(
            self.cert_assertion("PS256", "sha256", emu_crypto.b64url_encode, key_path=rogue)))
        self.assert_aadsts(r, 700027)
        r = self.post(self.token_url(), self.workload_form(
            self.cert_assertion("PS256", "sha256", emu_crypto.b64url_encode, aud="https://elsewhere/")))
        self.assert_aadsts(r, 700027)

    def test_second_app_with_site_grants(self):
        # Another app, federated with another service account, that may
        # read only the Ops site (Sites.Selected with one grant).
        other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        r = self.emu.call("POST", "clients", {"client_id": other, "sites": ["/teams/Ops"]})
        self.assertEqual(r["sites"], ["/teams/Ops"])
        self.emu.call("POST", "federated-credentials", {
            "op": "add", "client_id": other, "issuer": self.emu["oidc_issuer"],
            "subject": "system:serviceaccount:apps:ops-reader"})
        form = self.workload_form(self.sa_token(namespace="apps", sa="ops-reader"),
                                  client_id=other)
        r = self.post(self.token_url(), form)
        self.assertEqual(r.status, 200, r.body)
        token = r.json()["access_token"]
        ops = self.graph("/sites/contoso.sharepoint.com:/teams/Ops", token=token)
        self.assertEqual(ops.status, 200)
        finance = self.graph("/sites/contoso.sharepoint.com:/sites/Finance", token=token)
        self.assertEqual(finance.status, 403)
        self.assertEqual(finance.json()["error"]["code"], "accessDenied")
        self.assertEqual(self.graph(f"/drives/{self.emu['drive_id']}/root", token=token).status, 403)
        self.assertEqual(self.graph(f"/sites/{ops.json()['id']}/drive", token=token).status, 200)
        # The service account federated with the first app is not the other's.
        form = self.workload_form(client_id=other)
        self.assertEqual(self.post(self.token_url(), form).json()["error_codes"], [70021])
        # Apps without grants still read everything; null lifts a restriction.
        self.assertEqual(self.graph(f"/drives/{self.emu['drive_id']}/root").status, 200)
        self.emu.call("POST", "clients", {"client_id": other, "sites": None})
        self.assertEqual(self.graph(f"/drives/{self.emu['drive_id']}/root", token=token).status, 200)
        with self.assertRaises(RuntimeError):
            self.emu.call("POST", "clients", {"client_id": other, "sites": ["/sites/Nope"]})

    def test_imds(self):
        url = f"{self.emu['imds_url']}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com"
        r = request(url)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"], "bad_request_102")
        r = request(url, headers={"Metadata": "true"})
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        for k in ("expires_in", "expires_on", "not_before"):
            self.assertIsInstance(body[k], str)
        self.assertEqual(body["client_id"], self.emu["imds_system_client_id"])
        r = request(url + f"&client_id={self.emu['imds_client_id']}", headers={"Metadata": "true"})
        self.assertEqual(r.json()["client_id"], self.emu["imds_client_id"])
        r = request(url + "&client_id=nobody", headers={"Metadata": "true"})
        self.assertEqual(r.status, 400)
        self.assertIn("error", r.json())
        r = request(url + "&object_id=nobody", headers={"Metadata": "true"})
        self.assertEqual(r.status, 400)
        r = request(url.replace("api-version=2018-02-01&", ""), headers={"Metadata": "true"})
        self.assertEqual(r.status, 400)
        r = request(url, headers={"Metadata": "True"})  # must be lowercase "true"
        self.assertEqual(r.status, 400)
        r = request(url.upper().replace("HTTP://", "http://").split("?")[0].replace(
            "/METADATA/", "/Metadata/") + "?api-version=2018-02-01&resource=https://graph.microsoft.com",
            headers={"Metadata": "true"})
        self.assertEqual(r.status, 200)


class GraphDrive(EmulatorCase):
    start_args = ["--profile", "test", "--many", "5000", "--large-size", str(3 << 20)]

    token = None

    def g(self, path, **kw):
        if GraphDrive.token is None:
            GraphDrive.token = self.access_token()
        return self.graph(path, token=GraphDrive.token, **kw)

    def drive(self, rest=""):
        return f"/drives/{self.emu['drive_id']}{rest}"

    def path_url(self, rel, tail=""):
        enc = "/".join(urllib.parse.quote(p, safe="") for p in rel.split("/"))
        return self.drive(f"/root:/{enc}:{tail}")

    def test_auth_required(self):
        r = self.get(self.emu["graph_url"] + self.drive("/root"))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "InvalidAuthenticationToken")
        self.assertIn("Bearer", r.header("www-authenticate"))
        r = self.graph(self.drive("/root"), token="eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        self.assertEqual(r.status, 401)
        self.emu.call("POST", "token-lifetime", {"seconds": 1})
        short = self.access_token()
        self.emu.call("POST", "token-lifetime", {"seconds": 3599})
        time.sleep(1.5)
        self.assertEqual(self.graph(self.drive("/root"), token=short).status, 401)

    def test_sites_and_drives(self):
        site = self.g("/sites/contoso.sharepoint.com:/sites/Finance").json()
        self.assertEqual(site["id"], self.emu["site_id"])
        self.assertEqual(site["webUrl"], "https://contoso.sharepoint.com/sites/Finance")
        self.assertEqual(self.g("/sites/contoso.sharepoint.com:/sites/finance:").status, 200)
        self.assertEqual(self.g("/sites/contoso.sharepoint.com:/teams/Ops").json()["name"], "Ops")
        self.assertEqual(self.g("/sites/root").json()["webUrl"], "https://contoso.sharepoint.com")
        self.assertEqual(self.g("/sites/contoso.sharepoint.com:/sites/Nope").status, 404)
        drives = self.g(f"/sites/{site['id']}/drives").json()["value"]
        self.assertEqual([d["name"] for d in drives], ["Documents", "Reports Archive"])
        self.assertTrue(drives[0]["webUrl"].endswith("/Shared%20Documents"))
        with_system = self.g(f"/sites/{site['id']}/drives?$select=id,name,webUrl,system").json()["value"]
        self.assertEqual(len(with_system), 3)
        self.assertEqual(self.g(f"/sites/{site['id']}/drive").json()["id"], self.emu["drive_id"])
        self.assertEqual(self.g(f"/sites/{site['id']}/drive/root:/tiny.csv").json()["name"], "tiny.csv")
        self.assertEqual(self.g("/sites/contoso.sharepoint.com").json()["webUrl"],
                         "https://contoso.sharepoint.com")
        d = self.g(self.drive()).json()
        self.assertEqual(d["driveType"], "documentLibrary")
        self.assertIn("quota", d)
        self.assertEqual(self.g("/drives/b!nope").status, 404)

    def test_children_paging_5000(self):
        folder = self.g(self.path_url("many")).json()
        self.assertEqual(folder["folder"]["childCount"], 5000)
        self.emu.reset()
        url, names, pages = self.drive(f"/items/{folder['id']}/children?$top=1000"), [], 0
        while url:
            body = self.g(url).json()
            pages += 1
            names += [i["name"] for i in body["value"]]
            self.assertLessEqual(len(body["value"]), 1000)
            url = body.get("@odata.nextLink")
        self.assertEqual(pages, 5)
        self.assertEqual(self.emu.counters().get("children"), 5)
        self.assertEqual(len(names), 5000)
        self.assertEqual(set(names), {f"file-{i:05d}.csv" for i in range(1, 5001)})
        # Default page size 200; $select drops downloadUrl unless named.
        body = self.g(self.drive(f"/items/{folder['id']}/children?$select=id,name,size")).json()
        self.assertEqual(len(body["value"]), 200)
        self.assertNotIn("@microsoft.graph.downloadUrl", body["value"][0])
        self.assertEqual(set(body["value"][0]), {"id", "name", "size"})
        body = self.g(self.drive(f"/items/{folder['id']}/children?top=3&select=id,@microsoft.graph.downloadUrl")).json()
        self.assertIn("@microsoft.graph.downloadUrl", body["value"][0])
        self.assertEqual(self.g(self.drive(f"/items/{folder['id']}/children?$top=1001")).status, 400)

    def test_children_default_paging_5000(self):
        folder = self.g(self.path_url("many")).json()
        url, ids, pages = self.drive(f"/items/{folder['id']}/children"), [], 0
        while url:
            body = self.g(url).json()
            pages += 1
            self.assertLessEqual(len(body["value"]), 200)
            ids += [i["id"] for i in body["value"]]
            url = body.get("@odata.nextLink")
            if url:
                self.assertTrue(url.startswith(self.emu["graph_url"] + "/"), url)
        self.assertEqual(pages, 25)
        self.assertEqual(len(ids), 5000)
        self.assertEqual(len(set(ids)), 5000)

    def test_nextlink_expires(self):
        folder = self.g(self.path_url("many")).json()
        first = self.g(self.drive(f"/items/{folder['id']}/children?$top=10")).json()
        self.emu.call("POST", "nextlink-lifetime", {"seconds": 0.5})
        try:
            expiring = self.g(self.drive(f"/items/{folder['id']}/children?$top=10")).json()["@odata.nextLink"]
            time.sleep(1)
            self.assertEqual(self.g(expiring).status, 400)
            self.assertEqual(self.g(first["@odata.nextLink"]).status, 200)
        finally:
            self.emu.call("POST", "nextlink-lifetime", {"seconds": 3600})

    def test_item_shape_and_hash(self):
        ds = self.emu["dataset_dir"]
        item = self.g(self.path_url("reports/2026/q1.csv")).json()
        self.assertRegex(item["id"], r"^01[A-Z2-7]{32}$")
        self.assertRegex(item["eTag"], r'^"\{[0-9A-F-]{36}\},\d+"$')
        self.assertRegex(item["cTag"], r'^"c:\{[0-9A-F-]{36}\},\d+"$')
        self.assertEqual(item["size"], os.path.getsize(f"{ds}/reports/2026/q1.csv"))
        self.assertEqual(item["file"]["hashes"]["quickXorHash"], file_quickxorhash(f"{ds}/reports/2026/q1.csv"))
        self.assertEqual(item["fileSystemInfo"]["lastModifiedDateTime"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(f"{ds}/reports/2026/q1.csv"))))
        self.assertEqual(item["parentReference"]["path"], f"/drives/{self.emu['drive_id']}/root:/reports/2026")
        folder = self.g(self.path_url("reports")).json()
        self.assertNotIn("cTag", folder)
        self.assertIn("folder", folder)
        root = self.g(self.drive("/root")).json()
        self.assertEqual(root["name"], "root")
        self.assertEqual(root["root"], {})
        self.assertNotIn("id", root["parentReference"])

    def test_path_addressing(self):
        listing = self.g(self.path_url("names", "/children")).json()["value"]
        by_name = {i["name"]: i["id"] for i in listing}
        self.assertIn("Q3 #1.csv", by_name)
        for name, item_id in by_name.items():
            r = self.g(self.path_url(f"names/{name}"))
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.json()["id"], item_id, name)
        # Case-insensitive, closing colon optional, relative to an item id.
        self.assertEqual(self.g(self.path_url("NAMES/q3 #1.CSV")).json()["id"], by_name["Q3 #1.csv"])
        self.assertEqual(self.g(self.drive("/root:/names/R%26D%20%2B%20ops.csv")).json()["id"],
                         by_name["R&D + ops.csv"])
        names_id = self.g(self.path_url("names")).json()["id"]
        r = self.g(self.drive(f"/items/{names_id}:/{urllib.parse.quote('日本語')}/{urllib.parse.quote('中身.csv')}:"))
        self.assertEqual(r.json()["name"], "中身.csv")
        self.assertEqual(self.g(self.path_url("names/nope.csv")).status, 404)
        deep = "deep/" + "/".join(f"d{i}" for i in range(1, 11)) + "/leaf.csv"
        self.assertEqual(self.g(self.path_url(deep)).json()["name"], "leaf.csv")

    def test_content_redirect_and_ranges(self):
        ds = self.emu["dataset_dir"]
        with open(f"{ds}/large/big.bin", "rb") as f:
            data = f.read()
        item = self.g(self.path_url("large/big.bin")).json()
        r = self.g(self.drive(f"/items/{item['id']}/content"))
        self.assertEqual(r.status, 302)
        url = r.header("location")
        self.assertTrue(url.startswith(self.emu["content_url"] + "/download/"))
        self.assertEqual(self.get(url).body, data)  # no Authorization needed
        r = self.get(url, headers={"Range": "bytes=1000-4999"})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("content-range"), f"bytes 1000-4999/{len(data)}")
        self.assertEqual(r.body, data[1000:5000])
        r = self.get(url, headers={"Range": "bytes=-10"})
        self.assertEqual(r.body, data[-10:])
        r = self.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
        self.assertEqual(r.body, data[-5:])
        r = self.get(url, headers={"Range": f"bytes={len(data)}-"})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("content-range"), f"bytes */{len(data)}")
        r = self.get(url, method="HEAD")
        self.assertEqual(int(r.header("content-length")), len(data))
        self.assertEqual(r.header("accept-ranges"), "bytes")
        # The listing's downloadUrl works the same way.
        self.assertEqual(self.get(item["@microsoft.graph.downloadUrl"],
                                  headers={"Range": "bytes=0-0"}).body, data[:1])

    def test_download_url_expiry(self):
        item = self.g(self.path_url("tiny.csv")).json()
        url = item["@microsoft.graph.downloadUrl"]
        self.assertEqual(self.get(url).status, 200)
        self.emu.call("POST", "download-urls", {"expire_now": True})
        self.assertEqual(self.get(url).status, 401)
        self.emu.call("POST", "download-urls", {"lifetime": 3})
        try:
            url = self.g(self.path_url("tiny.csv")).json()["@microsoft.graph.downloadUrl"]
            self.assertEqual(self.get(url).status, 200)
            time.sleep(4.1)
            self.assertEqual(self.get(url).status, 401)
        finally:
            self.emu.call("POST", "download-urls", {"lifetime": 3600})
        tampered = url.replace("tempauth=v1.", "tempauth=v1.9")
        self.assertEqual(self.get(tampered).status, 401)

    def test_served_bytes_differ_from_listing(self):
        before = self.g(self.path_url("reports/rewritten.xlsx")).json()
        r = self.emu.call("POST", "served-bytes", {"path": "reports/rewritten.xlsx", "append": 777})
        self.assertEqual(r["served_size"], before["size"] + 777)
        after = self.g(self.path_url("reports/rewritten.xlsx")).json()
        self.assertEqual(after["size"], before["size"])
        self.assertEqual(after["file"]["hashes"], before["file"]["hashes"])
        body = self.get(after["@microsoft.graph.downloadUrl"]).body
        self.assertEqual(len(body), before["size"] + 777)


class Delta(EmulatorCase):
    def g(self, path):
        return self.graph(path)

    def latest(self):
        body = self.g(f"/drives/{self.emu['drive_id']}/root/delta?token=latest").json()
        self.assertEqual(body["value"], [])
        return body["@odata.deltaLink"]

    def changes(self, link):
        items, url = [], link
        while True:
            body = self.g(url).json()
            items += body["value"]
            if "@odata.deltaLink" in body:
                return items, body["@odata.deltaLink"]
            url = body["@odata.nextLink"]

    def test_full_enumeration(self):
        items, link = self.changes(f"/drives/{self.emu['drive_id']}/root/delta")
        ids = [i["id"] for i in items]
        self.assertEqual(len(ids), len(set(ids)))
        files = sum(len(f) for _, _, f in os.walk(self.emu["dataset_dir"]))
        dirs = sum(len(d) for _, d, _ in os.walk(self.emu["dataset_dir"]))
        self.assertEqual(len(items), files + dirs + 1)  # + root
        self.assertIn("root", items[0])
        for i in items:
            self.assertNotIn("path", i.get("parentReference", {}))

    def test_each_mutation_reported_exactly(self):
        link = self.latest()
        created = self.emu.mutate("create", "reports/new.csv", text="a,b\n1,2\n")
        items, link = self.changes(link)
        changed = [i for i in items if "folder" not in i and "root" not in i]
        self.assertEqual([i["id"] for i in changed], [created["id"]])
        self.assertIn("reports", [i["name"] for i in items if "folder" in i])

        before = self.graph(f"/drives/{self.emu['drive_id']}/items/{created['id']}").json()
        self.emu.mutate("modify", "reports/new.csv", text="a,b\n3,4\n5,6\n")
        items, link = self.changes(link)
        mod = [i for i in items if i["id"] == created["id"]][0]
        self.assertEqual(mod["size"], 12)
        self.assertNotEqual(mod["eTag"], before["eTag"])
        self.assertNotIn("cTag", mod)
        after = self.graph(f"/drives/{self.emu['drive_id']}/items/{created['id']}").json()
        self.assertNotEqual(after["cTag"], before["cTag"])

        self.emu.mutate("rename", "reports/new.csv", new_name="renamed.csv")
        items, link = self.changes(link)
        self.assertEqual([i["name"] for i in items if i["id"] == created["id"]], ["renamed.csv"])

        finance = self.graph(f"/drives/{self.emu['drive_id']}/root:/finance").json()
        self.emu.mutate("move", "reports/renamed.csv", new_parent="finance")
        items, link = self.changes(link)
        moved = [i for i in items if i["id"] == created["id"]][0]
        self.assertEqual(moved["parentReference"]["id"], finance["id"])

        self.emu.mutate("delete", "finance/renamed.csv")
        items, link = self.changes(link)
        gone = [i for i in items if i["id"] == created["id"]]
        self.assertEqual(len(gone), 1)
        self.assertIn("deleted", gone[0])
        self.assertNotIn("name", gone[0])
        items, link = self.changes(link)
        self.assertEqual(items, [])

    def test_delta_paging_keeps_select(self):
        url = f"/drives/{self.emu['drive_id']}/root/delta?$select=id,name,deleted&$top=7"
        ids, pages = [], 0
        while True:
            body = self.g(url).json()
            pages += 1
            self.assertLessEqual(len(body["value"]), 7)
            for i in body["value"]:
                self.assertLessEqual(set(i), {"id", "name", "deleted"})
            ids += [i["id"] for i in body["value"]]
            if "@odata.deltaLink" in body:
                self.assertNotIn("@odata.nextLink", body)
                break
            url = body["@odata.nextLink"]
            self.assertIn("select=id", url)
        self.assertGreater(pages, 2)
        self.assertEqual(len(ids), len(set(ids)))
        full, _ = self.changes(f"/drives/{self.emu['drive_id']}/root/delta")
        self.assertEqual(set(ids), {i["id"] for i in full})

    def test_download_url_serves_its_version(self):
        v1 = self.emu.mutate("create", "versioned.csv", text="version 1\n")
        url1 = v1["@microsoft.graph.downloadUrl"]
        self.assertRegex(url1, r"/download/%s/1\?UniqueId=" % v1["id"])
        self.emu.mutate("modify", "versioned.csv", text="version two\n")
        item = self.graph(f"/drives/{self.emu['drive_id']}/items/{v1['id']}").json()
        url2 = item["@microsoft.graph.downloadUrl"]
        self.assertIn(f"/download/{v1['id']}/2?", url2)
        self.assertEqual(self.get(url1).body, b"version 1\n")
        self.assertEqual(self.get(url2).body, b"version two\n")
        self.assertEqual(item["size"], len(b"version two\n"))
        self.emu.mutate("delete", "versioned.csv")
        self.assertEqual(self.get(url2).status, 404)
        self.assertEqual(self.graph(f"/drives/{self.emu['drive_id']}/items/{v1['id']}").status, 404)

    def test_resync_410(self):
        link = self.latest()
        self.emu.call("POST", "invalidate-delta", {})
        r = self.g(link)
        self.assertEqual(r.status, 410)
        self.assertEqual(r.json()["error"]["code"], "resyncRequired")
        self.assertTrue(r.header("location").startswith(self.emu["graph_url"]))
        fresh = self.g(r.header("location"))
        self.assertEqual(fresh.status, 200)


class Faults(EmulatorCase):
    def setUp(self):
        self.emu.clear_faults()
        self.token = self.access_token()

    def tearDown(self):
        self.emu.clear_faults()

    def test_throttle_then_recover(self):
        self.emu.fault(route="root", kind="throttle", count=2, retry_after=3)
        url = f"/drives/{self.emu['drive_id']}/root"
        for _ in range(2):
            r = self.graph(url, token=self.token)
            self.assertEqual(r.status, 429)
            self.assertEqual(r.header("retry-after"), "3")
            self.assertEqual(r.json()["error"]["code"], "activityLimitReached")
        self.assertEqual(self.graph(url, token=self.token).status, 200)
        self.emu.fault(route="root", kind="throttle", status=503, count=1, retry_after=5,
                       retry_after_format="date", ratelimit=True)
        r = self.graph(url, token=self.token)
        self.assertEqual(r.status, 503)
        self.assertIn("GMT", r.header("retry-after"))
        self.assertEqual(r.header("ratelimit-remaining"), "0")
        log = [e for e in self.emu.requests("root") if e["status"] in (429, 503)]
        self.assertEqual([e["retry_after"] for e in log[-3:]], [3, 3, 5])

    def test_reset_truncate_malformed(self):
        item = self.graph(f"/drives/{self.emu['drive_id']}/root:/large/big.bin", token=self.token).json()
        url = item["@microsoft.graph.downloadUrl"]
        import http.client
        self.emu.fault(route="download", kind="reset", count=1, after_bytes=4096)
        with self.assertRaises((ConnectionError, http.client.IncompleteRead, OSError)):
            self.get(url)
        self.emu.fault(route="download", kind="truncate", count=1, after_bytes=1000)
        with self.assertRaises(http.client.IncompleteRead):
            self.get(url)
        self.assertEqual(len(self.get(url).body), item["size"])
        self.emu.fault(route="root", kind="malformed", count=1)
        with self.assertRaises(json.JSONDecodeError):
            self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token).json()
        self.emu.fault(route="root", kind="status", status=503, count=1)
        self.assertEqual(self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token).status, 503)
        self.emu.fault(route="root", kind="expired_token", count=1)
        r = self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "InvalidAuthenticationToken")
        self.assertIn("authorization_uri", r.header("www-authenticate"))
        for status in (500, 502, 504):
            self.emu.fault(route="children", kind="status", status=status, count=1)
            r = self.graph(f"/drives/{self.emu['drive_id']}/root/children", token=self.token)
            self.assertEqual(r.status, status)
            self.assertIn("innerError", r.json()["error"])

    def test_latency_and_counters(self):
        self.emu.reset()
        self.emu.fault(route="root", kind="latency", ms=300, count=1)
        t = time.time()
        self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token)
        self.assertGreaterEqual(time.time() - t, 0.3)
        self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token)
        c = self.emu.counters()
        self.assertEqual(c.get("root"), 2)
        self.assertNotIn("children", c)

    def test_rate_faults(self):
        self.emu.fault(route="root", kind="throttle", rate=0.5, retry_after=1)
        statuses = [self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token).status
                    for _ in range(40)]
        self.assertTrue(0 < statuses.count(429) < 40, statuses)

    def test_patch_and_slow_faults(self):
        self.emu.fault(route="token", kind="patch", count=1,
                       set={"token_type": None, "expires_in": 2**63 - 1})
        body = self.post(self.token_url(), self.workload_form()).json()
        self.assertIsNone(body["token_type"])
        self.assertEqual(body["expires_in"], 2**63 - 1)
        self.assertTrue(body["access_token"])
        self.assertEqual(self.post(self.token_url(), self.workload_form()).json()["token_type"],
                         "Bearer")
        self.emu.fault(route="root", kind="slow", bps=2000, count=1)
        t = time.time()
        r = self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token)
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.time() - t, (len(r.body) - 200) / 2000 * 0.8)
        # Logged once the handler returns, a moment after the last byte.
        self.assertTrue(wait_for(lambda: [e.get("fault") for e in self.emu.requests("root")]
                                 [-1:] == ["slow"], 5))

    def hostile_page(self, what, folder=None, route="children", path=None, **kw):
        self.emu.fault(route=route, kind="hostile", what=what, count=1,
                       **({"folder": folder} if folder is not None else {}), **kw)
        r = self.graph(path or f"/drives/{self.emu['drive_id']}/root:/reports:/children",
                       token=self.token)
        self.assertEqual(r.status, 200)
        return r

    def test_hostile_pages_of_the_audit(self):
        d = self.emu["drive_id"]
        other = urllib.parse.urlsplit(self.emu["python_content_url"]).netloc
        page = self.hostile_page("foreign_link", path=f"/drives/{d}/root:/many:/children?$top=2")
        self.assertEqual(urllib.parse.urlsplit(page.json()["@odata.nextLink"]).netloc, other)
        latest = self.graph(f"/drives/{d}/root/delta?token=latest", token=self.token).json()
        page = self.hostile_page("foreign_link", route="delta", path=latest["@odata.deltaLink"])
        self.assertEqual(urllib.parse.urlsplit(page.json()["@odata.deltaLink"]).netloc, other)
        reports = self.graph(f"/drives/{d}/root:/reports", token=self.token).json()
        cyc = self.hostile_page("cycle").json()["value"]
        loops = {v["name"]: v for v in cyc if v["name"] in ("self-loop", "parent-loop")}
        self.assertEqual(loops["self-loop"]["id"], reports["id"])
        self.assertEqual(loops["parent-loop"]["id"], reports["parentReference"]["id"])
        self.assertEqual(loops["parent-loop"]["parentReference"]["id"], reports["id"])
        r = self.hostile_page("huge_empty", mib=1)
        self.assertGreater(len(r.body), 1 << 20)
        self.assertTrue(all(v == {} for v in r.json()["value"]))
        self.assertEqual(len(r.json()["value"]), (1 << 20) // 3)
        first = self.hostile_page("endless_full", items=50).json()
        self.assertEqual(len({v["id"] for v in first["value"]}), 50)
        nxt = self.graph(first["@odata.nextLink"], token=self.token)  # not armed now: normal
        self.assertEqual(nxt.status, 200)
        names = [v["name"] for v in self.hostile_page("root_child").json()["value"]
                 if "root" in v]
        self.assertEqual(names, ["a/b", "", "rooty"])
        dups = [v["name"] for v in self.hostile_page("duplicates").json()["value"]]
        self.assertEqual(dups.count("twin\x1b[31m\n.txt"), 2)
        urls = [v["@microsoft.graph.downloadUrl"] for v in
                self.hostile_page("http_download").json()["value"]
                if "@microsoft.graph.downloadUrl" in v]
        self.assertTrue(urls and all(u.startswith("http://") for u in urls))
        # A folder-scoped fault leaves other folders' pages alone.
        self.emu.fault(route="children", kind="hostile", what="cycle", folder="finance")
        try:
            plain = self.graph(f"/drives/{d}/root:/reports:/children", token=self.token).json()
            self.assertNotIn("self-loop", [v["name"] for v in plain["value"]])
        finally:
            self.emu.clear_faults()

    def test_request_log_says_whether_a_token_came(self):
        self.emu.reset()
        self.graph(f"/drives/{self.emu['drive_id']}/root", token=self.token)
        self.get(self.emu["python_content_url"] + "/v1.0/anything")
        log = self.emu.requests()
        self.assertTrue(next(e for e in log if e["route"] == "root")["authorization"])
        self.assertFalse(next(e for e in log if e["listener"] == "content")["authorization"])



class NginxBackend(EmulatorCase):
    """--content-backend nginx: same URL scheme, checks and Range answers."""

    def assert_count(self, route, n):
        """nginx logs a request after answering it: the last line may reach
        the log the emulator reads a moment after the client has its answer."""
        deadline = time.time() + 5
        while self.emu.counters().get(route) != n and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.emu.counters().get(route), n)

    start_args = ["--profile", "test", "--many", "5", "--large-size", str(1 << 20),
                  "--content-backend", "nginx"]

    @classmethod
    def setUpClass(cls):
        exe, why = emu_nginx.available()
        if exe is None:
            raise unittest.SkipTest(f"nginx backend not testable: {why}")
        super().setUpClass()

    def test_downloads_through_nginx(self):
        self.assertEqual(self.emu["content_backend"], "nginx")
        token = self.access_token()
        item = self.graph(f"/drives/{self.emu['drive_id']}/root:/large/big.bin", token=token).json()
        url = item["@microsoft.graph.downloadUrl"]
        self.assertTrue(url.startswith(self.emu["content_url"] + "/download/"))
        with open(os.path.join(self.emu["dataset_dir"], "large", "big.bin"), "rb") as f:
            data = f.read()
        self.emu.reset()
        self.assertEqual(self.get(url).body, data)
        r = self.get(url, headers={"Range": "bytes=1000-4999"})
        self.assertEqual((r.status, r.header("content-range")), (206, f"bytes 1000-4999/{len(data)}"))
        self.assertEqual(r.body, data[1000:5000])
        r = self.get(url, headers={"Range": f"bytes={len(data)}-"})
        self.assertEqual((r.status, r.header("content-range")), (416, f"bytes */{len(data)}"))
        self.assertEqual(int(self.get(url, method="HEAD").header("content-length")), len(data))
        self.assertEqual(self.get(url.replace("tempauth=v1.", "tempauth=v1.9")).status, 401)
        self.assert_count("download", 5)
        # A new version gets a new URL; the old URL keeps its bytes.
        self.emu.mutate("modify", "tiny.csv", text="changed\n")
        fresh = self.graph(f"/drives/{self.emu['drive_id']}/root:/tiny.csv", token=token).json()
        self.assertEqual(self.get(fresh["@microsoft.graph.downloadUrl"]).body, b"changed\n")
        # Early expiry reloads nginx with a new key before the call returns.
        self.emu.call("POST", "download-urls", {"expire_now": True})
        self.assertEqual(self.get(url).status, 401)
        self.assertEqual(self.get(fresh["@microsoft.graph.downloadUrl"]).status, 401)

    def test_download_faults_bypass_nginx(self):
        token = self.access_token()
        self.emu.fault(route="download", kind="truncate", count=1, after_bytes=100)
        try:
            item = self.graph(f"/drives/{self.emu['drive_id']}/root:/large/big.bin", token=token).json()
            url = item["@microsoft.graph.downloadUrl"]
            self.assertTrue(url.startswith(self.emu["python_content_url"]), url)
            import http.client
            with self.assertRaises(http.client.IncompleteRead):
                self.get(url)
        finally:
            self.emu.clear_faults()
        item = self.graph(f"/drives/{self.emu['drive_id']}/root:/large/big.bin", token=token).json()
        self.assertTrue(item["@microsoft.graph.downloadUrl"].startswith(self.emu["content_url"]))

    def test_web_tree_on_both_hosts(self):
        """/tree/: the library as plain web folders, for rclone's http
        backend; the same bytes from nginx and from the Python host, whose
        answers faults (latency) can slow down."""
        with open(os.path.join(self.emu["dataset_dir"], "large", "big.bin"), "rb") as f:
            data = f.read()
        for host in (self.emu["content_url"], self.emu["python_content_url"]):
            with self.subTest(host=host):
                self.emu.reset()
                index = self.get(host + "/tree/").body.decode()
                self.assertIn('href="large/"', index)
                self.assertIn('href="tiny.csv"', index)
                names = self.get(host + "/tree/names/").body.decode()
                self.assertIn("%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20folder/".lower(), names.lower())
                self.assertEqual(self.get(host + "/tree/large/big.bin").body, data)
                r = self.get(host + "/tree/large/big.bin", headers={"Range": "bytes=10-19"})
                self.assertEqual((r.status, r.body), (206, data[10:20]))
                self.assertEqual(self.get(host + "/tree/nothing.csv").status, 404)
                self.assert_count("tree", 5)
        self.emu.fault(route="tree", kind="latency", ms=200)
        try:
            t0 = time.time()
            self.get(self.emu["python_content_url"] + "/tree/tiny.csv")
            self.assertGreaterEqual(time.time() - t0, 0.2)
        finally:
            self.emu.clear_faults()


if __name__ == "__main__":
    unittest.main(verbosity=2)
