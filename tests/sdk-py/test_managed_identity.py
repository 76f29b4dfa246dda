"""Managed identities through azure-identity (Debian's python3-azure), configured only by the
environment as on Azure, each then reading a secret with azure-keyvault-secrets:

* App Service: IDENTITY_ENDPOINT + IDENTITY_HEADER of a web app (system-assigned; user-assigned
  chosen by client_id and by identity_config={"mi_res_id": ...}),
* IMDS: `coffer agent --imds` for a virtual machine, found through
  AZURE_POD_IDENTITY_AUTHORITY_HOST (system-assigned, client_id, identity_config msi_res_id),
* token exchange: AZURE_AUTHORITY_HOST + AZURE_TENANT_ID + AZURE_FEDERATED_TOKEN_FILE +
  AZURE_CLIENT_ID, the file holding a service-account token (with its trailing newline) from a
  local OIDC issuer trusted through a federated identity credential,
* DefaultAzureCredential picking each of them from the environment.

The credentials read os.environ when they are built, so each test patches it; TLS trust comes from
REQUESTS_CA_BUNDLE as it would in a deployed workload.  Which identity a token belongs to is read
from its `oid` claim, and one assigned identity is deliberately left without an access policy so
that a wrong choice would show as 403.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
import unittest
from unittest import mock

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import (ClientSecretCredential, CredentialUnavailableError,
                            DefaultAzureCredential, ManagedIdentityCredential)
from azure.keyvault.secrets import SecretClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (the one server launcher, shared with tests/integration)
from oidc_issuer import OidcIssuer  # noqa: E402  (shared with the integration tests)

AGENT_READY_TIMEOUT_S = 60.0  # a bound, never a performance claim
SECRET_NAME = "workload-secret"
SECRET_VALUE = "read-with-a-managed-identity"
RG = "rg-sdk"
# Every variable through which azure-identity picks a credential or an authority.
IDENTITY_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
                 "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                 "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                 "AZURE_PASSWORD", "AZURE_AUTHORITY_HOST", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                 "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")

SERVER = None
ISSUER = None
AGENT = None
IDS = {}  # name -> {"id", "principalId", "clientId"}; "app" and "vm" -> their system principal


def setUpModule():
    global SERVER, ISSUER, AGENT
    SERVER = harness.launch_server()
    try:
        ISSUER = OidcIssuer(subject="system:serviceaccount:payments:api")
        _provision()
        AGENT = ImdsAgent(cli_env(), _endpoint_env("vm", "sdk-vm")).start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if AGENT is not None:
        AGENT.stop()
    if ISSUER is not None:
        ISSUER.stop()
    if SERVER is not None:
        SERVER.cleanup()


def cli_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "COFFER_"))}
    env.update(SERVER.env)
    env["COFFER_CA_FILE"] = SERVER.ca_path
    return env


def coffer(*args):
    p = subprocess.run([harness.coffer_binary()] + list(args), env=cli_env(),
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"coffer {' '.join(args)} exited with {p.returncode}:\n"
                             f"{p.stdout.decode()}\n{p.stderr.decode()}")
    return p.stdout.decode()


def grant(object_id):
    coffer("keyvault", "set-policy", "--name", "dev", "--object-id", object_id,
           "--secret-permissions", "get", "list")


def _endpoint_env(kind, name):
    """IDENTITY_ENDPOINT and IDENTITY_HEADER of a workload, from `identity endpoint --env`."""
    out = coffer(kind, "identity", "endpoint", "-n", name, "-g", RG, "--env")
    env = harness.parse_env_file(out)
    assert set(env) == {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"}, out
    return env


def _provision():
    for name in ("sdk-uai-a", "sdk-uai-b", "sdk-uai-ungranted", "sdk-fed"):
        IDS[name] = json.loads(coffer("identity", "create", "-n", name, "-g", RG))
    app = json.loads(coffer("webapp", "create", "-n", "sdk-app", "-g", RG, "--assign-identity",
                            "[system]", "sdk-uai-a", "sdk-uai-b", "sdk-uai-ungranted"))
    IDS["app"] = {"principalId": app["identity"]["principalId"], "id": app["id"]}
    vm = json.loads(coffer("vm", "create", "-n", "sdk-vm", "-g", RG, "--assign-identity",
                           "[system]", "sdk-uai-a", "sdk-uai-b"))
    IDS["vm"] = {"principalId": vm["identity"]["principalId"], "id": vm["id"]}
    coffer("identity", "federated-credential", "create", "--name", "payments-api",
           "--identity-name", "sdk-fed", "-g", RG, "--issuer", ISSUER.url,
           "--subject", ISSUER.subject)
    for name in ("app", "vm", "sdk-uai-a", "sdk-uai-b", "sdk-fed"):
        grant(IDS[name]["principalId"])
    with ClientSecretCredential(SERVER.env["AZURE_TENANT_ID"], SERVER.env["AZURE_CLIENT_ID"],
                                SERVER.env["AZURE_CLIENT_SECRET"],
                                authority=SERVER.authority_host, instance_discovery=False,
                                connection_verify=SERVER.ca_path) as admin, \
            SecretClient(SERVER.vault_url, admin, connection_verify=SERVER.ca_path) as secrets:
        secrets.set_secret(SECRET_NAME, SECRET_VALUE)


class ImdsAgent:
    """`coffer agent --imds --port 0` for one workload; stopped by PID."""

    started = 0

    def __init__(self, base_env, endpoint_env):
        self.env = dict(base_env)
        self.env.update(endpoint_env)
        ImdsAgent.started += 1
        self.stderr_path = os.path.join(SERVER.root, f"agent-{ImdsAgent.started}.stderr.log")
        self.proc = None
        self.authority = None
        self.returncode = None

    def start(self):
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [harness.coffer_binary(), "agent", "--imds", "--port", "0"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
        out = b""
        fd = self.proc.stdout.fileno()
        while b"AZURE_POD_IDENTITY_AUTHORITY_HOST=" not in out or not out.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"coffer agent not ready (exit {self.returncode}); stdout: "
                                   f"{out!r}\nstderr: {harness.read_text(self.stderr_path, 4000)}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                out += os.read(fd, 4096)
        self.authority = harness.parse_env_file(out.decode())[
            "AZURE_POD_IDENTITY_AUTHORITY_HOST"]
        return self

    def stop(self):
        if self.proc is not None and self.returncode is None:
            self.returncode = harness.stop_process(self.proc)
            self.proc.stdout.close()
        return self.returncode


def oid_of(token):
    payload = token.token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["oid"]


class ManagedIdentityTestCase(unittest.TestCase):

    def setUp(self):
        # Clean identity variables, restored by patch.dict after the test.
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        for k in IDENTITY_VARS:
            os.environ.pop(k, None)
        os.environ["REQUESTS_CA_BUNDLE"] = SERVER.ca_path

    @property
    def scope(self):
        return SERVER.vault_url.replace("://dev.", "://", 1) + "/.default"

    def closing(self, obj):
        """obj (a credential or client), closed after the test."""
        self.addCleanup(obj.close)
        return obj

    def assertReadsSecretAs(self, credential, principal_id):
        """credential's token is principal_id's and SecretClient reads the secret with it."""
        self.closing(credential)
        self.assertEqual(oid_of(credential.get_token(self.scope)), principal_id)
        client = self.closing(SecretClient(SERVER.vault_url, credential))
        self.assertEqual(client.get_secret(SECRET_NAME).value, SECRET_VALUE)


class AppServiceTests(ManagedIdentityTestCase):

    def setUp(self):
        super().setUp()
        os.environ.update(_endpoint_env("webapp", "sdk-app"))
        self.assertTrue(os.environ["IDENTITY_ENDPOINT"].startswith("https://localhost:"))

    def test_system_assigned(self):
        self.assertReadsSecretAs(ManagedIdentityCredential(), IDS["app"]["principalId"])

    def test_user_assigned_by_client_id(self):
        for name in ("sdk-uai-a", "sdk-uai-b"):
            with self.subTest(name):
                self.assertReadsSecretAs(ManagedIdentityCredential(client_id=IDS[name]["clientId"]),
                                         IDS[name]["principalId"])

    def test_user_assigned_by_resource_id(self):
        uai = IDS["sdk-uai-b"]
        credential = ManagedIdentityCredential(identity_config={"mi_res_id": uai["id"]})
        self.assertReadsSecretAs(credential, uai["principalId"])

    def test_the_chosen_identity_is_the_one_that_reaches_the_vault(self):
        # Assigned but never granted: the token is real, the vault says no.
        ungranted = IDS["sdk-uai-ungranted"]
        credential = self.closing(ManagedIdentityCredential(client_id=ungranted["clientId"]))
        self.assertEqual(oid_of(credential.get_token(self.scope)), ungranted["principalId"])
        with self.assertRaises(HttpResponseError) as ctx:
            self.closing(SecretClient(SERVER.vault_url, credential)).get_secret(SECRET_NAME)
        self.assertEqual(ctx.exception.status_code, 403)
        self.assertIn(ungranted["principalId"], str(ctx.exception))

    def test_an_identity_not_assigned_to_the_app_is_refused(self):
        credential = self.closing(ManagedIdentityCredential(client_id=IDS["sdk-fed"]["clientId"]))
        with self.assertRaises(ClientAuthenticationError) as ctx:
            credential.get_token(self.scope)
        self.assertIn("not assigned", str(ctx.exception))

    def test_a_wrong_identity_header_is_refused(self):
        header = os.environ["IDENTITY_HEADER"]
        os.environ["IDENTITY_HEADER"] = header[:-1] + ("A" if header[-1] != "A" else "B")
        with self.assertRaises(ClientAuthenticationError) as ctx:
            self.closing(ManagedIdentityCredential()).get_token(self.scope)
        self.assertIn("invalid_client", str(ctx.exception))


class ImdsTests(ManagedIdentityTestCase):

    def setUp(self):
        super().setUp()
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = AGENT.authority
        self.assertTrue(AGENT.authority.startswith("http://127.0.0.1:"), AGENT.authority)

    def test_system_assigned(self):
        self.assertReadsSecretAs(ManagedIdentityCredential(), IDS["vm"]["principalId"])

    def test_user_assigned_by_client_id(self):
        self.assertReadsSecretAs(ManagedIdentityCredential(client_id=IDS["sdk-uai-a"]["clientId"]),
                                 IDS["sdk-uai-a"]["principalId"])

    def test_user_assigned_by_resource_id(self):
        uai = IDS["sdk-uai-b"]
        credential = ManagedIdentityCredential(identity_config={"msi_res_id": uai["id"]})
        self.assertReadsSecretAs(credential, uai["principalId"])

    def test_an_identity_not_assigned_to_the_vm_is_unavailable(self):
        # IMDS answers 400, which azure-identity reports as "not assigned".
        credential = self.closing(ManagedIdentityCredential(
            client_id=IDS["sdk-uai-ungranted"]["clientId"]))
        with self.assertRaises(CredentialUnavailableError) as ctx:
            credential.get_token(self.scope)
        self.assertIn("not been assigned", str(ctx.exception))


class TokenExchangeTests(ManagedIdentityTestCase):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(SERVER.root, self.id().rsplit(".", 1)[-1])
        os.mkdir(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        os.environ.update({
            "AZURE_AUTHORITY_HOST": SERVER.authority_host,
            "AZURE_TENANT_ID": SERVER.env["AZURE_TENANT_ID"],
            "AZURE_CLIENT_ID": IDS["sdk-fed"]["clientId"],
            "AZURE_FEDERATED_TOKEN_FILE": self.token_file(ISSUER.mint()),
        })

    def token_file(self, token):
        path = os.path.join(self.dir, "token")
        with open(path, "w", encoding="ascii") as f:
            f.write(token + "\n")  # as the kubelet projects it
        return path

    def test_federated_token_file(self):
        self.assertReadsSecretAs(ManagedIdentityCredential(), IDS["sdk-fed"]["principalId"])

    def test_a_token_for_another_subject_is_refused(self):
        os.environ["AZURE_FEDERATED_TOKEN_FILE"] = self.token_file(
            ISSUER.mint(claims={"sub": "system:serviceaccount:payments:intruder"}))
        with self.assertRaises(ClientAuthenticationError) as ctx:
            self.closing(ManagedIdentityCredential()).get_token(self.scope)
        self.assertIn("AADSTS70021", str(ctx.exception))


class DefaultAzureCredentialTests(ManagedIdentityTestCase):

    def test_app_service_environment(self):
        os.environ.update(_endpoint_env("webapp", "sdk-app"))
        self.assertReadsSecretAs(DefaultAzureCredential(), IDS["app"]["principalId"])

    def test_app_service_environment_with_azure_client_id(self):
        # AZURE_CLIENT_ID without a secret: EnvironmentCredential steps aside and the managed
        # identity credential asks for that user-assigned identity.
        os.environ.update(_endpoint_env("webapp", "sdk-app"))
        os.environ["AZURE_CLIENT_ID"] = IDS["sdk-uai-a"]["clientId"]
        self.assertReadsSecretAs(DefaultAzureCredential(), IDS["sdk-uai-a"]["principalId"])

    def test_imds_environment(self):
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = AGENT.authority
        self.assertReadsSecretAs(DefaultAzureCredential(), IDS["vm"]["principalId"])

    def test_imds_environment_with_azure_client_id(self):
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = AGENT.authority
        os.environ["AZURE_CLIENT_ID"] = IDS["sdk-uai-b"]["clientId"]
        self.assertReadsSecretAs(DefaultAzureCredential(), IDS["sdk-uai-b"]["principalId"])

    def test_workload_identity_environment(self):
        path = os.path.join(SERVER.root, "dac-token")
        self.addCleanup(os.remove, path)
        with open(path, "w", encoding="ascii") as f:
            f.write(ISSUER.mint() + "\n")
        os.environ.update({
            "AZURE_AUTHORITY_HOST": SERVER.authority_host,
            "AZURE_TENANT_ID": SERVER.env["AZURE_TENANT_ID"],
            "AZURE_CLIENT_ID": IDS["sdk-fed"]["clientId"],
            "AZURE_FEDERATED_TOKEN_FILE": path,
        })
        self.assertReadsSecretAs(DefaultAzureCredential(), IDS["sdk-fed"]["principalId"])


class AgentLifecycleTests(unittest.TestCase):

    def test_the_agent_stops_cleanly_on_sigterm(self):
        agent = ImdsAgent(cli_env(), _endpoint_env("vm", "sdk-vm")).start()
        self.addCleanup(agent.stop)
        self.assertNotEqual(agent.authority, AGENT.authority)
        self.assertEqual(agent.stop(), 0, harness.read_text(agent.stderr_path, 4000))


if __name__ == "__main__":
    unittest.main()
