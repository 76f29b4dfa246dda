#!/usr/bin/env python3
"""Fills (or empties) a Coffer tenant with role assignments for bench/run.sh.

  assignments.py create N   creates N assignments spread over 40 service principals
                            (created here) at the subscription, a resource group and a vault
  assignments.py delete     deletes every assignment this script created

Uses the dev credentials from the environment (dev.env) and loopback only.
"""
import http.client
import json
import os
import ssl
import sys
import urllib.parse
import uuid

ROLES = ["4633458b-17de-408a-b874-0445c86b69e6", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
         "21090545-7ca7-4776-b22c-e363652d74d2", "b24988ac-6180-42a0-ab88-20f7382dd24c",
         "acdd72a7-3385-48ef-bd42-f606fba81ae7", "12338af0-0e69-4776-bea7-57ae8d297424",
         "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "a4417e6f-fecd-4de8-b567-7b0420556985"]
MARK = "bench/assignments.py"
API = "api-version=2022-04-01"


def main():
    authority = urllib.parse.urlparse(os.environ["AZURE_AUTHORITY_HOST"])
    ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    conn = http.client.HTTPSConnection(authority.hostname, authority.port, context=ctx)
    tenant, sub = os.environ["AZURE_TENANT_ID"], os.environ["COFFER_SUBSCRIPTION_ID"]

    def token(resource):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": os.environ["AZURE_CLIENT_ID"],
            "client_secret": os.environ["AZURE_CLIENT_SECRET"], "scope": resource + "/.default"})
        conn.request("POST", f"/{tenant}/oauth2/v2.0/token", form,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        return json.loads(r.read())["access_token"]

    arm = {"Authorization": "Bearer " + token(os.environ["AZURE_AUTHORITY_HOST"]),
           "Content-Type": "application/json"}

    def call(method, path, body=None, headers=arm, ok=(200, 201, 204)):
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status not in ok:
            sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else None

    base = f"/subscriptions/{sub}"
    if sys.argv[1] == "delete":
        listed = call("GET", f"{base}/providers/Microsoft.Authorization/roleAssignments?{API}")
        for a in listed["value"]:
            if a["properties"].get("description") == MARK:
                call("DELETE", a["id"] + "?" + API)
        return
    count = int(sys.argv[2])
    graph = dict(arm, Authorization="Bearer " + token("https://graph.microsoft.com"))
    principals = []
    listed = call("GET", "/v1.0/servicePrincipals", headers=graph)["value"]
    principals = [p["id"] for p in listed if p["displayName"].startswith("bench-assignee-")]
    while len(principals) < 40:
        p = call("POST", "/v1.0/servicePrincipals",
                 {"displayName": f"bench-assignee-{len(principals)}"}, headers=graph)
        principals.append(p["id"])
    rg = os.environ["COFFER_RESOURCE_GROUP"]
    scopes = [base, f"{base}/resourceGroups/{rg}",
              f"{base}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/dev",
              f"{base}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/rbacbench"]
    made = 0
    for role in ROLES:
        for scope in scopes:
            for p in principals:
                if made == count:
                    return
                body = {"properties": {
                    "roleDefinitionId": f"{base}/providers/Microsoft.Authorization/"
                                        f"roleDefinitions/{role}",
                    "principalId": p, "description": MARK}}
                call("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/"
                            f"{uuid.uuid4()}?{API}", body)
                made += 1


if __name__ == "__main__":
    main()
