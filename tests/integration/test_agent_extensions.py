"""Coffer's extensions to the SecretProviderClass in `coffer agent`, end to end against the real
server (docs/agent.md, "Coffer's extensions", "Status records", "Metrics", "`coffer doctor`").

Standalone mounts (SecretProviderClass files + a target directory each) and the CSI provider
socket (coffer-csi-client calls Mount as the upstream driver does):

* Optional objects (`optional: "true"`): a missing (404), a disabled and a forbidden (403, an
  RBAC vault with a role on one secret only) object leave the mount without their file; the
  status record says `"optional": true, "state": "absent"` with the error and a warning, the
  gauge keyvault_object_optional_unavailable is 1 with the error type, `coffer doctor` says
  [WARN] and exits 0. Created, enabled or granted later, the object is written at the next
  refresh: by push (the watch stream, a poll interval of an hour) or by poll for a grant, which
  is no change of a secret. `optionalFallback: lastKnown` keeps the content the mount had
  (standalone: the target directory, across a rewrite of the other files; CSI: only a kubelet CSI
  volume named as the request's target path, never another directory or a path with `..`), and
  follows the layout's own links but never a symlink out of the target or the volume (whoever
  owns a standalone mount's files, its `uid`, could plant one; the agent reads as root).
  A mount whose object that is not optional is missing still fails all or nothing, also when an
  optional object of it appears meanwhile.
* Selections (`objectSelector` with `namePrefix` and `tags`): 0, then 1, then 200 matching
  secrets (one kept-alive client creates them), with additions and removals (deleted, disabled,
  a tag changed) followed by push; the name prefix ignores case; `objectFileTemplate` with
  `{{suffix}}`; the default cap of 100 and `objectSelectorLimit` (5 with 6 matches fails the mount
  with the old files kept); a change of any secret of the vault refreshes a selecting mount; an
  identity that may list the vault (a custom role with only `secrets/readMetadata/action`) but
  read only some secrets (Key Vault Secrets User on those) gets those files only, and one that
  may not list fails the mount.
* `writeTags: "true"`: `<file>.tags.json`, the version's tags, for named and selected secrets,
  following a change of the tags by push.
* Expiry: keyvault_object_expiry_seconds with the driver-style labels for a version with `exp`
  (about two days ahead, then negative once in the past, then absent without `exp`), the status
  record's `expiresOn` and warnings ("expires in", "expired at ... still mounted"), and
  `coffer doctor`'s [WARN] (none with a config whose expiryWarning is shorter than the time left).
* Hostile selections (a name prefix of 5,000 characters, 16 tags, an unknown selector key, a
  template out of the mount, ...): the mount fails with an error that names the parameter, the
  old files stay exactly as they were and the agent keeps serving; over the CSI socket they are
  INVALID_ARGUMENT.

No secret value appears in the agent's output. Every wait is bounded (WAIT_S) and none is a
performance claim.
"""

import base64
import http.client
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import uuid

from harness import KV_API, coffer_binary, read_text, wait_until
from test_agent import RG, WAIT_S, Agent, AgentTestCase, csi_client_binary

SECRETS_USER = "Key Vault Secrets User"
LIST_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
IDENTITY_PARAMS = {"useVMManagedIdentity", "userAssignedIdentityID", "clientID"}
COMMON_LABELS = {"provider": "coffer", "os_type": "linux"}
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def flow(value):
    """A field's value in an objects entry: a mapping as a YAML flow mapping (JSON is YAML), any
    other value as a quoted string, as the Azure provider's examples write them."""
    return json.dumps(value) if isinstance(value, dict) else json.dumps(str(value))


def objects_yaml(objects, indent):
    """The `objects` parameter's array: one YAML document per entry, each in a block scalar."""
    pad = " " * indent
    out = ""
    for o in objects:
        o = dict({"objectType": "secret"}, **({"objectName": o} if isinstance(o, str) else o))
        out += f"{pad}- |\n" + "".join(f"{pad}  {k}: {flow(v)}\n" for k, v in o.items())
    return out


def ext_spc_yaml(objects, vault, tenant, **params):
    """A SecretProviderClass manifest whose objects may carry Coffer's extensions."""
    extra = "".join(f"    {k}: {json.dumps(str(v))}\n" for k, v in params.items())
    return ("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
            "metadata:\n  name: app-spc\n  namespace: default\nspec:\n  provider: azure\n"
            f"  parameters:\n    keyvaultName: {vault}\n    tenantID: {json.dumps(tenant)}\n"
            + extra + "    objects: |\n      array:\n" + objects_yaml(objects, 8))


def samples(text, name, **labels):
    """The samples of metric `name` whose labels include `labels`: [(labels, value)]."""
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        got = dict(LABEL.findall(m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            out.append((got, float(m.group(3))))
    return out


def sample_value(text, name, **labels):
    """The value of the one sample of `name` with these labels; None when there is none."""
    found = samples(text, name, **labels)
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} {labels}: {found}")
    return found[0][1] if found else None


class ExtensionTestCase(AgentTestCase):
    """AgentTestCase with SecretProviderClass files that carry Coffer's extensions, secrets with
    tags and attributes, and the per-object gauges."""

    maxDiff = 12000

    # ---- the vault ---------------------------------------------------------------------------

    def put_secret(self, name, value=None, vault="dev", tags=None, **attributes):
        """PUT /secrets/{name} with tags and attributes (enabled, exp); returns (value,
        version)."""
        value = value if value is not None else self.value(name)
        body = {"value": value}
        if tags is not None:
            body["tags"] = tags
        if attributes:
            body["attributes"] = attributes
        r = self.srv.kv("PUT", f"/secrets/{name}", body, vault=vault)
        self.assertEqual(r.status, 200, repr(r))
        self.secrets[f"secret {name} {value}"] = value
        return value, r.json()["id"].rstrip("/").rsplit("/", 1)[1]

    def patch_secret(self, name, vault="dev", tags=None, **attributes):
        """PATCH the latest version's attributes (exp=None removes exp) or tags."""
        body = {}
        if tags is not None:
            body["tags"] = tags
        if attributes:
            body["attributes"] = attributes
        r = self.srv.kv("PATCH", f"/secrets/{name}", body, vault=vault)
        self.assertEqual(r.status, 200, repr(r))
        return r.json()

    def delete_secret(self, name, vault="dev"):
        r = self.srv.kv("DELETE", f"/secrets/{name}", vault=vault)
        self.assertEqual(r.status, 200, repr(r))

    def put_many(self, items, vault="dev"):
        """PUTs [(name, value, tags)] on one kept-alive connection (a fresh one only if the
        server closes it); returns {name: version}."""
        token = self.srv.token(self.srv.vault_resource)
        conn = [self.srv.connection(self.srv.vault_host(vault))]
        versions = {}

        def send(path, body):
            for attempt in (0, 1):
                try:
                    return self.srv.send(conn[0], "PUT", path, body,
                                         {"Authorization": "Bearer " + token})
                except (http.client.HTTPException, OSError):
                    if attempt:
                        raise
                    conn[0].close()
                    conn[0] = self.srv.connection(self.srv.vault_host(vault))
        try:
            for name, value, tags in items:
                r = send(f"/secrets/{name}?api-version={KV_API}", {"value": value, "tags": tags})
                self.assertEqual(r.status, 200, f"{name}: {r!r}")
                self.secrets[f"secret {name} {value}"] = value
                versions[name] = r.json()["id"].rstrip("/").rsplit("/", 1)[1]
        finally:
            conn[0].close()
        return versions

    def rbac_vault(self, name):
        return self.coffer_json("keyvault", "create", "-n", name, "-g", RG)

    def assign(self, role, principal, scope):
        self.coffer_json("role", "assignment", "create", "--role", role,
                         "--assignee-object-id", principal, "--scope", scope)

    # ---- mounts ------------------------------------------------------------------------------

    def xmount(self, name, objects, spc_params=None, **fields):
        """A mount entry with its own SPC file (Coffer's extensions allowed) and target; the dev
        service principal unless spc_params choose another identity."""
        d = tempfile.mkdtemp(prefix=f"mount-{name}-", dir=self.srv.root)
        entry = {"name": name, "secretProviderClass": os.path.join(d, "spc.yaml"),
                 "target": os.path.join(d, "target")}
        self.write_spc(entry, objects, spc_params)
        if not IDENTITY_PARAMS.intersection(spc_params or {}):
            entry["nodePublishSecretRef"] = self.sp_file
        entry.update(fields)
        return entry

    def write_spc(self, entry, objects, spc_params=None):
        params = dict(spc_params or {})
        vault = params.pop("vault", "dev")
        with open(entry["secretProviderClass"], "w", encoding="utf-8") as f:
            f.write(ext_spc_yaml(objects, vault, self.srv.tenant, **params))

    @staticmethod
    def data_dir(entry):
        try:
            return os.readlink(os.path.join(entry["target"], "..data"))
        except OSError:
            return None

    def tree(self, entry):
        """{path: content} of every file of the mount's current timestamp directory."""
        ts = self.data_dir(entry)
        if ts is None:
            return {}
        root = os.path.join(entry["target"], ts)
        out = {}
        for d, _, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                out[os.path.relpath(p, root)] = read_text(p)
        return out

    def visible(self, entry):
        """The names at the top of the target, without the layout's `..` entries."""
        try:
            return sorted(e for e in os.listdir(entry["target"]) if not e.startswith(".."))
        except OSError:
            return []

    def wait_tree(self, entry, want, agent):
        ok = wait_until(lambda: self.tree(entry) == want, timeout=WAIT_S, interval=0.1)
        if not ok:
            self.assertEqual(self.tree(entry), want,
                             f"status: {agent.status(entry['name'])}\n{agent.output()[-3000:]}")

    def wait_status(self, agent, name, pred, what):
        ok = wait_until(lambda: pred(agent.status(name)), timeout=WAIT_S, interval=0.1)
        self.assertTrue(ok, f"{name}: {what}; status: {agent.status(name)}\n"
                            f"{agent.output()[-3000:]}")
        return agent.status(name)

    @staticmethod
    def objects_of(status):
        return {o["id"]: o for o in status.get("objects", [])}

    def wait_metric(self, agent, name, want, **labels):
        """Waits until the sample of `name` with these labels is `want` (None: absent; a
        callable: true of the value); returns the value."""
        def check():
            v = sample_value(agent.metrics(), name, **labels)
            return want(v) if callable(want) else v == want
        ok = wait_until(check, timeout=WAIT_S, interval=0.2)
        if not ok:
            text = agent.metrics()
            lines = [line for line in text.splitlines() if line.startswith(name)]
            self.fail(f"{name} {labels}: {sample_value(text, name, **labels)}, want {want}\n"
                      + "\n".join(lines))
        return sample_value(agent.metrics(), name, **labels)

    def doctor(self, config, mount):
        p = subprocess.run([coffer_binary(), "doctor", "--config", config, "--mount", mount],
                           capture_output=True, text=True, timeout=90, env=self.agent_env())
        self.assertNoSecrets(p.stdout, p.stderr)
        return p

    @staticmethod
    def line_of(text, start):
        """The first line of `text` that starts (after its indent) with `start`, or ""."""
        for line in text.splitlines():
            if line.strip().startswith(start):
                return line
        return ""


class OptionalObjectTests(ExtensionTestCase):

    def test_missing_and_disabled_optional_objects_are_left_out_then_pushed_in(self):
        base, _ = self.put_secret("opt-base")
        off, _ = self.put_secret("opt-disabled", enabled=False)
        m = self.xmount("opt", ["opt-base",
                                {"objectName": "opt-missing", "optional": "true"},
                                {"objectName": "opt-disabled", "optional": "true"}])
        agent = Agent(self, [m], poll="1h")  # only the watch stream can explain a change
        self.assertIn("mounts: 1 of 1 mounted", agent.output())
        self.assertEqual(self.tree(m), {"opt-base": base})
        self.assertLayout(m, ["opt-base"])
        st = agent.status("opt")
        self.assertTrue(st["mounted"], st)
        self.assertEqual(st["lastError"], "", st)
        objects = self.objects_of(st)
        self.assertNotIn("optional", objects["secret/opt-base"], st)
        for oid, words in (("secret/opt-missing", "opt-missing"),
                           ("secret/opt-disabled", "disabled")):
            o = objects[oid]
            self.assertIs(o.get("optional"), True, o)
            self.assertEqual(o.get("state"), "absent", o)
            self.assertIn(words, o.get("error", ""), o)
            self.assertFalse(o.get("version"), o)
            self.assertTrue(any(f"{oid} is optional and is left out" in w
                                for w in st.get("warnings", [])), st)
        labels = {"mount": "opt", "object_type": "secret"}
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1,
                         object_name="opt-missing", file="opt-missing",
                         reason="SecretNotFound", **labels)
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1,
                         object_name="opt-disabled", file="opt-disabled", reason="Forbidden",
                         **labels)
        self.wait_metric(agent, "keyvault_object_disabled", 1, object_name="opt-disabled",
                         **labels)
        self.wait_metric(agent, "keyvault_object_disabled", 0, object_name="opt-base", **labels)
        # Not optional: no such gauge.
        self.wait_metric(agent, "keyvault_object_optional_unavailable", None,
                         object_name="opt-base", **labels)
        doc = self.doctor(agent.config, "opt")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        self.assertIn("optional", self.line_of(doc.stdout, "[WARN] secret opt-missing"),
                      doc.stdout)
        self.assertTrue(self.line_of(doc.stdout, "[WARN] secret opt-disabled"), doc.stdout)
        # A disabled object's fix is to enable it, not a grant.
        disabled_fix = doc.stdout.split("[WARN] secret opt-disabled", 1)[1].split("\n")[1]
        self.assertIn("enable it", disabled_fix)
        self.assertNotIn("grant", disabled_fix)
        self.assertTrue(self.line_of(doc.stdout, "[ok] secret opt-base"), doc.stdout)
        self.assertNotIn("[FAIL]", doc.stdout)

        # Created: the new version is pushed, and the file appears.
        missing, version = self.put_secret("opt-missing")
        self.wait_tree(m, {"opt-base": base, "opt-missing": missing}, agent)
        st = self.wait_status(agent, "opt", lambda s: self.objects_of(s).get(
            "secret/opt-missing", {}).get("state") == "present", "opt-missing present")
        self.assertEqual(self.objects_of(st)["secret/opt-missing"]["version"], version)
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 0,
                         object_name="opt-missing", reason="", **labels)
        self.wait_metric(agent, "keyvault_object_version_info", 1, object_name="opt-missing",
                         file="opt-missing", version=version, **labels)
        # Enabled (an update of the version's attributes): pushed as well.
        self.patch_secret("opt-disabled", enabled=True)
        self.wait_tree(m, {"opt-base": base, "opt-missing": missing, "opt-disabled": off}, agent)
        st = self.wait_status(agent, "opt", lambda s: s.get("warnings") == [] and all(
            o.get("state", "present") == "present" for o in s.get("objects", [])),
            "every object present and no warning")
        self.assertLayout(m, ["opt-base", "opt-missing", "opt-disabled"])
        self.wait_metric(agent, "keyvault_object_disabled", 0, object_name="opt-disabled",
                         **labels)
        self.assertIn("opt-missing", agent.output(), "the log says which object was left out")
        self.assertNoSecrets(agent.output(), agent.metrics(),
                             read_text(os.path.join(agent.state, "mounts", "opt.json")))

    def test_a_forbidden_optional_object_is_left_out_until_granted(self):
        vault = self.rbac_vault("optrbac")
        visible, _ = self.put_secret("o-visible", vault="optrbac")
        hidden, _ = self.put_secret("o-hidden", vault="optrbac")
        principal = self.vm["identity"]["principalId"]
        self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/o-visible")
        m = self.xmount("forbidden", ["o-visible", {"objectName": "o-hidden", "optional": "true"}],
                        {"vault": "optrbac", "useVMManagedIdentity": "true"})
        # A grant is no change of a secret: only a poll sees it.
        agent = Agent(self, [m], poll="1s")
        self.assertEqual(self.tree(m), {"o-visible": visible})
        st = agent.status("forbidden")
        self.assertTrue(st["mounted"], st)
        hidden_status = self.objects_of(st)["secret/o-hidden"]
        self.assertEqual(hidden_status.get("state"), "absent", st)
        self.assertIn("objectName:o-hidden", hidden_status.get("error", ""), st)
        self.assertTrue(any("secret/o-hidden is optional and is left out" in w
                            for w in st["warnings"]), st)
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1, mount="forbidden",
                         object_name="o-hidden", reason="Forbidden")
        self.wait_metric(agent, "keyvault_object_disabled", 0, mount="forbidden",
                         object_name="o-hidden")
        doc = self.doctor(agent.config, "forbidden")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        self.assertTrue(self.line_of(doc.stdout, "[WARN] secret o-hidden"), doc.stdout)
        self.assertIn(SECRETS_USER, doc.stdout, "the fix names the role")
        self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/o-hidden")
        self.wait_tree(m, {"o-visible": visible, "o-hidden": hidden}, agent)
        self.wait_status(agent, "forbidden", lambda s: s.get("warnings") == [] and self.objects_of(
            s).get("secret/o-hidden", {}).get("state") == "present", "o-hidden present")
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 0, mount="forbidden",
                         object_name="o-hidden")
        self.assertNoSecrets(agent.output())

    def test_last_known_keeps_the_content_through_disable_rewrite_and_delete(self):
        other, _ = self.put_secret("lk-other")
        kept, _ = self.put_secret("lk-keep")
        m = self.xmount("lastknown", ["lk-other", {"objectName": "lk-keep", "optional": "true",
                                                   "optionalFallback": "lastKnown",
                                                   "filePermission": "0600"}])
        agent = Agent(self, [m], poll="1h")
        self.assertEqual(self.tree(m), {"lk-other": other, "lk-keep": kept})
        self.assertEqual(self.objects_of(agent.status("lastknown"))["secret/lk-keep"].get(
            "state"), "present", agent.status("lastknown"))

        def state():
            return self.objects_of(agent.status("lastknown")).get("secret/lk-keep", {})

        # Disabled: the file keeps its content.
        self.patch_secret("lk-keep", enabled=False)
        self.wait_status(agent, "lastknown", lambda s: state().get("state") == "kept",
                         "lk-keep kept")
        st = agent.status("lastknown")
        self.assertTrue(st["mounted"], st)
        self.assertEqual(st["lastError"], "", st)
        self.assertIn("disabled", state().get("error", ""), st)
        self.assertTrue(any("secret/lk-keep is optional and keeps the content last written" in w
                            for w in st["warnings"]), st)
        self.assertEqual(self.tree(m), {"lk-other": other, "lk-keep": kept})
        self.wait_metric(agent, "keyvault_object_disabled", 1, mount="lastknown",
                         object_name="lk-keep")
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1, mount="lastknown",
                         object_name="lk-keep", reason="Forbidden")
        # Another object changes: a new timestamp directory, the kept content is in it too, with
        # the object's mode.
        ts = self.data_dir(m)
        other2, _ = self.put_secret("lk-other")
        self.wait_tree(m, {"lk-other": other2, "lk-keep": kept}, agent)
        self.assertNotEqual(self.data_dir(m), ts)
        self.assertEqual(os.stat(os.path.join(m["target"], "..data", "lk-keep")).st_mode & 0o777,
                         0o600)
        self.assertEqual(state().get("state"), "kept", agent.status("lastknown"))
        # A new (enabled) version replaces it.
        kept3, version3 = self.put_secret("lk-keep")
        self.wait_tree(m, {"lk-other": other2, "lk-keep": kept3}, agent)
        self.wait_status(agent, "lastknown", lambda s: state().get("version") == version3 and
                         state().get("state") == "present", "lk-keep present again")
        # Deleted (404): kept again, with the newest content.
        self.delete_secret("lk-keep")
        self.wait_status(agent, "lastknown", lambda s: state().get("state") == "kept",
                         "lk-keep kept after its deletion")
        self.assertEqual(self.tree(m), {"lk-other": other2, "lk-keep": kept3})
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1, mount="lastknown",
                         object_name="lk-keep", reason="SecretNotFound")
        self.assertNoSecrets(agent.output())

    def test_last_known_never_reads_through_a_symlink_out_of_the_target(self):
        # Whoever owns the mount's files (the mount's `uid`) may replace one of them with a
        # symlink; the agent, as root, must not copy what it points to into the mount. The test
        # plants the link itself.
        value, _ = self.put_secret("lk-sym")
        m = self.xmount("symlink", [{"objectName": "lk-sym", "optional": "true",
                                     "optionalFallback": "lastKnown"}])
        agent = Agent(self, [m], poll="1h")
        self.assertEqual(self.tree(m), {"lk-sym": value})
        outside = os.path.join(self.srv.root, "outside-" + uuid.uuid4().hex)
        secret = "outside the mount " + uuid.uuid4().hex
        with open(os.open(outside, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secret)
        planted = os.path.join(m["target"], self.data_dir(m), "lk-sym")
        os.unlink(planted)
        os.symlink(outside, planted)
        self.patch_secret("lk-sym", enabled=False)
        self.wait_status(agent, "symlink", lambda s: self.objects_of(s).get(
            "secret/lk-sym", {}).get("state") in ("kept", "absent"), "lk-sym not present")
        self.assertNotIn(secret, self.tree(m).values(),
                         "the agent copied a file from outside the target into the mount")
        self.assertNotIn(secret, read_text(os.path.join(m["target"], "lk-sym")))
        self.assertNoSecrets(agent.output())

    def test_a_missing_object_that_is_not_optional_still_fails_all_or_nothing(self):
        a, _ = self.put_secret("nm-a")
        b, _ = self.put_secret("nm-b")
        strict = self.xmount("strict", ["nm-a", {"objectName": "nm-opt", "optional": "true"},
                                        "nm-b"])
        never = self.xmount("never", ["nm-a", {"objectName": "nm-opt2", "optional": "true"},
                                      "nm-never"])
        agent = Agent(self, [strict, never], poll="1h")
        self.assertIn("mounts: 1 of 2 mounted", agent.output())
        self.assertEqual(self.tree(strict), {"nm-a": a, "nm-b": b})
        st = agent.status("never")
        self.assertFalse(st["mounted"], st)
        self.assertIn("objectName:nm-never", st["lastError"], st)
        self.assertEqual(self.visible(never), [], "no partial files")
        ts = self.data_dir(strict)
        # A non-optional object deleted: the mount fails, the old files stay as they were.
        self.delete_secret("nm-b")
        st = self.wait_status(agent, "strict",
                              lambda s: "objectName:nm-b" in s.get("lastError", ""),
                              "the deletion of nm-b fails the mount")
        self.assertTrue(st["mounted"], st)
        self.assertEqual(self.tree(strict), {"nm-a": a, "nm-b": b})
        self.assertEqual(self.data_dir(strict), ts)
        # The optional object appears meanwhile: read, but not written alone.
        opt, opt_version = self.put_secret("nm-opt")
        st = self.wait_status(agent, "strict", lambda s: self.objects_of(s).get(
            "secret/nm-opt", {}).get("version") == opt_version, "nm-opt read")
        self.assertIn("objectName:nm-b", st["lastError"], st)
        self.assertEqual(self.tree(strict), {"nm-a": a, "nm-b": b})
        self.assertEqual(self.data_dir(strict), ts)
        # Recovered: everything at once.
        r = self.srv.kv("POST", "/deletedsecrets/nm-b/recover")
        self.assertEqual(r.status, 200, repr(r))
        self.wait_tree(strict, {"nm-a": a, "nm-b": b, "nm-opt": opt}, agent)
        self.wait_status(agent, "strict", lambda s: s.get("lastError") == "", "recovered")
        self.assertFalse(agent.status("never")["mounted"])
        self.assertEqual(self.visible(never), [])
        self.assertNoSecrets(agent.output())


class SelectorTests(ExtensionTestCase):

    def test_a_selection_follows_0_then_1_then_200_secrets_by_push(self):
        # Near misses: another tag value, no tag, the prefix elsewhere in the name, disabled.
        api, _ = self.put_secret("sel-api", tags={"app": "api"})
        self.put_secret("sel-untagged")
        self.put_secret("x-sel-web", tags={"app": "web"})
        self.put_secret("sel-off", tags={"app": "web"}, enabled=False)
        selector = {"objectSelector": {"namePrefix": "sel-", "tags": {"app": "web"}},
                    "objectFileTemplate": "web/{{suffix}}"}
        m = self.xmount("select", [selector])
        agent = Agent(self, [m], poll="1h")  # only the watch stream can explain a change
        st = agent.status("select")
        self.assertTrue(st["mounted"], st)
        self.assertEqual(st["lastError"], "", st)
        self.assertEqual(self.tree(m), {}, "nothing matches yet")
        self.assertEqual(self.visible(m), [])

        one, one_version = self.put_secret("sel-one", tags={"app": "web", "extra": "x"})
        want = {"web/one": one}
        self.wait_tree(m, want, agent)
        st = self.wait_status(agent, "select", lambda s: "secret/sel-one" in self.objects_of(s),
                              "sel-one in the status record")
        o = self.objects_of(st)["secret/sel-one"]
        self.assertEqual((o["file"], o["version"], o.get("state")),
                         ("web/one", one_version, "present"), o)
        self.wait_metric(agent, "keyvault_object_version_info", 1, mount="select",
                         object_type="secret", object_name="sel-one", file="web/one",
                         version=one_version)

        # 199 more, one of them in another case (Key Vault names ignore case): 200 matches, over
        # the default objectSelectorLimit of 100.
        items = [(f"sel-{i:04d}", self.value(f"s{i}"), {"app": "web"}) for i in range(198)]
        items.append(("SEL-Mixed", self.value("mixed"), {"app": "web"}))
        self.put_many(items)
        st = self.wait_status(agent, "select", lambda s: "more than objectSelectorLimit (100)" in
                              s.get("lastError", ""), "the default cap of 100")
        self.assertTrue(st["mounted"], st)
        self.assertLessEqual(len(self.tree(m)), 100)
        # A larger cap takes effect at the next refresh; a change of any secret of the vault
        # refreshes a mount that selects.
        self.write_spc(m, [selector], {"objectSelectorLimit": "250"})
        self.put_secret("unrelated-poke")
        want.update({"web/" + n[len("sel-"):]: v for n, v, _ in items})
        self.assertIn("web/Mixed", want)
        self.assertEqual(len(want), 200)
        self.wait_tree(m, want, agent)
        self.wait_status(agent, "select", lambda s: s.get("lastError") == "", "no error")
        self.assertLayout(m, ["web"])

        # Removals: deleted, disabled, a tag changed; an addition by a tag change.
        self.delete_secret("sel-0000")
        self.delete_secret("sel-0001")
        self.patch_secret("sel-0002", enabled=False)
        self.patch_secret("sel-0003", tags={"app": "api"})
        self.patch_secret("sel-api", tags={"app": "web"})
        for gone in ("web/0000", "web/0001", "web/0002", "web/0003"):
            del want[gone]
        want["web/api"] = api
        self.wait_tree(m, want, agent)
        st = self.wait_status(agent, "select", lambda s: s.get("lastError") == "" and
                              len(s.get("objects", [])) == 197, "197 objects")
        self.assertNotIn("secret/sel-0000", self.objects_of(st))
        self.assertNoSecrets(agent.output())

    def test_the_selector_limit_fails_the_mount_and_keeps_the_old_files(self):
        want = {}
        for i in range(5):
            want[f"cap-{i}"], _ = self.put_secret(f"cap-{i}", tags={"cap": "yes"})
        selector = {"objectSelector": {"namePrefix": "cap-", "tags": {"cap": "yes"}}}
        m = self.xmount("cap", [selector], {"objectSelectorLimit": "5"})
        agent = Agent(self, [m], poll="1h")
        self.assertEqual(self.tree(m), want)
        ts = self.data_dir(m)
        sixth, _ = self.put_secret("cap-5", tags={"cap": "yes"})
        st = self.wait_status(agent, "cap", lambda s: "more than objectSelectorLimit (5)" in
                              s.get("lastError", ""), "six matches over a cap of five")
        self.assertIn("objectSelector secret/cap-*", st["lastError"])
        self.assertTrue(st["mounted"], st)
        self.assertEqual(self.tree(m), want)
        self.assertEqual(self.data_dir(m), ts)
        rc = subprocess.run([coffer_binary(), "agent", "status", "--state-dir", agent.state],
                            capture_output=True, text=True, timeout=30)
        self.assertIn("STALE", rc.stdout)
        self.assertIn("objectSelectorLimit", rc.stdout)
        doc = self.doctor(agent.config, "cap")
        # The doctor counts the selection against the cap, as the mount does.
        self.assertIn("[FAIL] objectSelector secret/cap-*: the mount's selectors select 6 "
                      "secrets, more than objectSelectorLimit (5)", doc.stdout)
        self.assertIn("raise the SPC parameter objectSelectorLimit", doc.stdout)
        self.assertNotEqual(doc.returncode, 0)
        self.assertTrue(self.line_of(doc.stdout, "[ok] token"), doc.stdout)
        # One stops matching: mounted again.
        self.patch_secret("cap-0", tags={"cap": "no"})
        del want["cap-0"]
        want["cap-5"] = sixth
        self.wait_tree(m, want, agent)
        self.wait_status(agent, "cap", lambda s: s.get("lastError") == "", "recovered")
        self.assertNoSecrets(agent.output())

    def test_write_tags_for_named_and_selected_secrets(self):
        named, _ = self.put_secret("wt-named", tags={"env": "prod", "team": "storefront"})
        plain, _ = self.put_secret("wt-plain")
        s1, _ = self.put_secret("wtsel-a", tags={"kind": "cfg", "n": "1"})
        s2, _ = self.put_secret("wtsel-b", tags={"kind": "cfg"})
        m = self.xmount("tags", [{"objectName": "wt-named", "writeTags": "true"},
                                 {"objectName": "wt-plain", "writeTags": "true",
                                  "objectAlias": "conf/plain"},
                                 {"objectSelector": {"namePrefix": "wtsel-",
                                                     "tags": {"kind": "cfg"}},
                                  "writeTags": "true", "objectFileTemplate": "sel/{{name}}"}])
        agent = Agent(self, [m], poll="1h")
        files = self.tree(m)
        self.assertEqual(sorted(files), ["conf/plain", "conf/plain.tags.json", "sel/wtsel-a",
                                         "sel/wtsel-a.tags.json", "sel/wtsel-b",
                                         "sel/wtsel-b.tags.json", "wt-named",
                                         "wt-named.tags.json"])
        self.assertEqual(files["wt-named"], named)
        self.assertEqual(json.loads(files["wt-named.tags.json"]),
                         {"env": "prod", "team": "storefront"})
        self.assertEqual(files["conf/plain"], plain)
        self.assertEqual(json.loads(files["conf/plain.tags.json"]), {})
        self.assertEqual(files["sel/wtsel-a"], s1)
        self.assertEqual(json.loads(files["sel/wtsel-a.tags.json"]), {"kind": "cfg", "n": "1"})
        self.assertEqual(files["sel/wtsel-b"], s2)
        self.assertEqual(json.loads(files["sel/wtsel-b.tags.json"]), {"kind": "cfg"})
        # The tags change (no new version): pushed, the tags file follows.
        self.patch_secret("wt-named", tags={"env": "staging"})
        ok = wait_until(lambda: read_text(os.path.join(m["target"], "wt-named.tags.json")) and
                        json.loads(read_text(os.path.join(m["target"], "wt-named.tags.json")))
                        == {"env": "staging"}, timeout=WAIT_S)
        self.assertTrue(ok, self.tree(m))
        self.assertEqual(self.read(m, "wt-named"), named)
        self.assertNoSecrets(agent.output())

    def test_an_identity_that_may_list_but_read_only_some_gets_only_those(self):
        vault = self.rbac_vault("selrbac")
        parts = {n: self.put_secret(n, vault="selrbac")[0] for n in ("part-1", "part-2",
                                                                     "part-3")}
        sub = f"/subscriptions/{self.srv.subscription}"
        self.coffer_json("role", "definition", "create", "--role-definition", json.dumps({
            "Name": "agent secret lister", "Description": "lists secrets, reads none",
            "Actions": [], "DataActions": [LIST_ACTION], "AssignableScopes": [sub]}))
        principal = self.vm["identity"]["principalId"]
        self.assign("agent secret lister", principal, vault["id"])
        for n in ("part-1", "part-3"):
            self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/" + n)
        # The user-assigned identity may read part-1 but not list.
        self.assign(SECRETS_USER, self.uai["principalId"], vault["id"] + "/secrets/part-1")
        selector = [{"objectSelector": {"namePrefix": "part-"}}]
        lister = self.xmount("lister", selector, {"vault": "selrbac",
                                                  "useVMManagedIdentity": "true"})
        reader = self.xmount("reader", selector, {"vault": "selrbac",
                                                  "useVMManagedIdentity": "true",
                                                  "userAssignedIdentityID": self.uai["clientId"]})
        agent = Agent(self, [lister, reader], poll="1s")  # a grant is seen by a poll
        self.assertEqual(self.tree(lister), {"part-1": parts["part-1"],
                                             "part-3": parts["part-3"]})
        st = agent.status("lister")
        self.assertTrue(st["mounted"], st)
        self.assertEqual(st["lastError"], "", st)
        skipped = self.objects_of(st)["secret/part-2"]
        self.assertEqual(skipped.get("state"), "absent", st)
        self.assertTrue(skipped.get("error"), st)
        self.assertTrue(any("secret/part-2 is optional and is left out" in w
                            for w in st["warnings"]), st)
        self.wait_metric(agent, "keyvault_object_optional_unavailable", 1, mount="lister",
                         object_name="part-2", reason="Forbidden")
        st = agent.status("reader")
        self.assertFalse(st["mounted"], st)
        self.assertIn("failed to list the secrets for objectSelector secret/part-*",
                      st["lastError"], st)
        self.assertEqual(self.visible(reader), [])
        doc = self.doctor(agent.config, "reader")
        self.assertEqual(doc.returncode, 1, doc.stdout + doc.stderr)
        self.assertTrue(self.line_of(doc.stdout, "[FAIL] objectSelector secret/part-*"),
                        doc.stdout)
        self.assertIn("list and read the secrets of vault selrbac", doc.stdout)
        doc = self.doctor(agent.config, "lister")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        self.assertIn("selects 3 enabled secrets",
                      self.line_of(doc.stdout, "[ok] objectSelector secret/part-*"), doc.stdout)
        # Granted: the next poll writes it.
        self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/part-2")
        self.wait_tree(lister, parts, agent)
        self.wait_status(agent, "lister", lambda s: s.get("warnings") == [], "no warning")
        self.assertFalse(agent.status("reader")["mounted"])
        self.assertNoSecrets(agent.output())

    def test_hostile_selections_fail_naming_the_parameter_and_keep_the_old_files(self):
        one, _ = self.put_secret("hz-one")
        good = [{"objectSelector": {"namePrefix": "hz-"}}]
        m = self.xmount("hostile", good)
        agent = Agent(self, [m], poll="1s")  # SPC edits are seen by a poll
        self.assertEqual(self.tree(m), {"hz-one": one})
        ts = self.data_dir(m)
        sel = "objectSelector"
        cases = [
            ([{sel: {"namePrefix": "h" * 5000}}], {},
             "objectSelector.namePrefix"),
            ([{sel: {"namePrefix": "hz-", "tags": {f"t{i}": "v" for i in range(16)}}}], {},
             "objectSelector.tags has 16 tags"),
            ([{sel: {"namePrefix": "hz-", "nameSuffix": "x"}}], {},
             "objectSelector has an unknown key"),
            ([{sel: {"namePrefix": "hz-", "tags": {"t": "v" * 300}}}], {},
             "objectSelector.tags.t: a tag value has at most 256"),
            ([{sel: {"namePrefix": "hz-", "tags": {"t" * 600: "v"}}}], {},
             "objectSelector.tags: a tag name must have"),
            ([{sel: "hz-"}], {}, "objectSelector must be a mapping"),
            ([{sel: {"namePrefix": "hz/../"}}], {}, "objectSelector.namePrefix"),
            ([{sel: {"namePrefix": "hz-"}, "objectName": "hz-one"}], {},
             "objectSelector and objectName exclude each other"),
            ([{sel: {"namePrefix": "hz-"}, "objectType": "key"}], {},
             "objectType must be secret"),
            ([{sel: {"namePrefix": "hz-"}, "objectFileTemplate": "../{{name}}"}], {},
             "objectFileTemplate"),
            ([{sel: {"namePrefix": "hz-"}, "objectFileTemplate": "same"}], {},
             "names every secret alike"),
            ([{sel: {"namePrefix": "hz-"}, "optional": "true"}], {},
             "optional does not apply to objectSelector"),
            (good, {"objectSelectorLimit": "100000"}, "objectSelectorLimit"),
            # Known only once expanded: an empty file name, two selections of one file.
            ([{sel: {"namePrefix": "hz-one"}, "objectFileTemplate": "{{suffix}}"}], {},
             "objectSelector secret/hz-one*: secret hz-one"),
            ([{sel: {"namePrefix": "hz-"}}, {sel: {"namePrefix": "hz-o"}}], {},
             "is already used by"),
            ([{"objectName": "hz-one", "optional": "true", "optionalFallback": "lastKnown",
               "objectVersionHistory": "2"}], {},
             "optionalFallback lastKnown cannot be combined with objectVersionHistory"),
            ([{"objectName": "hz-one", "optionalFallback": "lastKnown"}], {},
             "optionalFallback is set but the object is not optional"),
        ]
        for objects, params, words in cases:
            with self.subTest(words=words):
                self.write_spc(m, objects, params)
                st = self.wait_status(agent, "hostile",
                                      lambda s, w=words: w in s.get("lastError", ""), words)
                self.assertTrue(st["mounted"], st)
                self.assertEqual(self.tree(m), {"hz-one": one})
                self.assertEqual(self.data_dir(m), ts)
                self.assertIsNone(agent.proc.poll(), "the agent keeps running")
                self.assertLess(len(st["lastError"]), 1000, "the error quotes little")
        # Still serving: a good SPC again, and a new match.
        self.write_spc(m, good)
        two, _ = self.put_secret("hz-two")
        self.wait_tree(m, {"hz-one": one, "hz-two": two}, agent)
        self.wait_status(agent, "hostile", lambda s: s.get("lastError") == "", "recovered")
        self.assertNoSecrets(agent.output())


class ExpiryTests(ExtensionTestCase):

    def test_expiry_gauge_status_warnings_and_doctor(self):
        value, version = self.put_secret("exp-db")
        plain, _ = self.put_secret("exp-plain")
        m = self.xmount("expiry", ["exp-db", "exp-plain"])
        agent = Agent(self, [m], poll="1h")
        labels = {"mount": "expiry", "object_type": "secret", "object_name": "exp-db",
                  "file": "exp-db"}
        self.wait_metric(agent, "keyvault_object_version_info", 1, version=version, **labels)
        self.assertIsNotNone(sample_value(agent.metrics(),
                                          "keyvault_object_last_change_timestamp_seconds",
                                          **labels))
        self.assertIsNone(sample_value(agent.metrics(), "keyvault_object_expiry_seconds",
                                       **labels), "no exp, no gauge")
        self.assertNotIn("expiresOn", self.objects_of(agent.status("expiry"))["secret/exp-db"])
        self.assertEqual(agent.status("expiry")["warnings"], [])

        def exp_of():
            return self.objects_of(agent.status("expiry")).get("secret/exp-db", {}).get(
                "expiresOn")

        # Two days ahead: within the default expiryWarning (168h).
        exp = int(time.time()) + 2 * 86400
        self.patch_secret("exp-db", exp=exp)
        st = self.wait_status(agent, "expiry", lambda s: exp_of() == exp, "expiresOn set")
        self.assertEqual(self.objects_of(st)["secret/exp-db"]["version"], version)
        warnings = [w for w in st["warnings"] if "secret/exp-db" in w]
        self.assertEqual(len(warnings), 1, st)
        self.assertIn("expires in", warnings[0])
        self.assertFalse([w for w in st["warnings"] if "exp-plain" in w], st)
        left = self.wait_metric(agent, "keyvault_object_expiry_seconds",
                                lambda v: v is not None, **labels)
        self.assertTrue(2 * 86400 - 600 <= left <= 2 * 86400 + 5, left)
        found = samples(agent.metrics(), "keyvault_object_expiry_seconds", mount="expiry")
        self.assertEqual([s[0] for s in found], [dict(labels, **COMMON_LABELS)],
                         "only exp-db has an expiry, with exactly these labels")
        doc = self.doctor(agent.config, "expiry")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        line = self.line_of(doc.stdout, "[WARN] secret exp-db")
        self.assertIn("expires in", line, doc.stdout)
        self.assertTrue(self.line_of(doc.stdout, "[ok] secret exp-plain"), doc.stdout)
        # A config that warns only a day ahead: nothing to say.
        with open(agent.config, encoding="utf-8") as f:
            config = json.load(f)
        short = os.path.join(agent.dir, "short.yaml")
        with open(short, "w", encoding="utf-8") as f:
            json.dump(dict(config, expiryWarning="24h"), f)
        doc = self.doctor(short, "expiry")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        self.assertNotIn("[WARN]", doc.stdout)
        self.assertTrue(self.line_of(doc.stdout, "[ok] secret exp-db"), doc.stdout)

        # In the past: expired, still mounted.
        past = int(time.time()) - 3600
        self.patch_secret("exp-db", exp=past)
        st = self.wait_status(agent, "expiry", lambda s: exp_of() == past, "expiresOn moved")
        warnings = [w for w in st["warnings"] if "secret/exp-db" in w]
        self.assertEqual(len(warnings), 1, st)
        self.assertIn("expired at", warnings[0])
        self.assertIn("still mounted", warnings[0])
        self.assertEqual(self.tree(m), {"exp-db": value, "exp-plain": plain})
        left = self.wait_metric(agent, "keyvault_object_expiry_seconds",
                                lambda v: v is not None and v < 0, **labels)
        self.assertTrue(-3600 - 600 <= left <= -3600 + 5, left)
        doc = self.doctor(agent.config, "expiry")
        self.assertEqual(doc.returncode, 0, doc.stdout + doc.stderr)
        self.assertIn("expired at", self.line_of(doc.stdout, "[WARN] secret exp-db"), doc.stdout)

        # No exp: no gauge, no warning.
        self.patch_secret("exp-db", exp=None)
        st = self.wait_status(agent, "expiry", lambda s: "secret/exp-db" in self.objects_of(s)
                              and exp_of() is None, "expiresOn removed")
        self.assertEqual(st["warnings"], [], st)
        self.wait_metric(agent, "keyvault_object_expiry_seconds", None, **labels)
        self.wait_metric(agent, "keyvault_object_version_info", 1, version=version, **labels)
        self.assertEqual(self.tree(m), {"exp-db": value, "exp-plain": plain})
        self.assertIn("expires in", agent.output(), "the log says so when the warnings change")
        self.assertNoSecrets(agent.output(), agent.metrics())


class CsiExtensionTests(ExtensionTestCase):
    """The provider socket, called as the upstream driver calls it."""

    POD = "prod/web-7d9c"

    def setUp(self):
        self.csi_dir = tempfile.mkdtemp(prefix="csi-", dir=self.srv.root)
        self.agent = Agent(self, [], args=["--csi-provider-dir", self.csi_dir])
        self.default_target = "/var/lib/kubelet/pods/1b7b/volumes/kubernetes.io~csi/v/mount"

    def attributes(self, objects, vault="dev", **params):
        token = self.issuer.mint()
        self.secrets[f"token {len(self.secrets)}"] = token
        attrs = {"keyvaultName": vault, "tenantID": self.srv.tenant,
                 "clientID": self.fed["clientId"], "objects": "array:\n" + objects_yaml(objects, 2),
                 "secretProviderClass": "app-spc", "csi.storage.k8s.io/pod.name": "web-7d9c",
                 "csi.storage.k8s.io/pod.namespace": "prod", "csi.storage.k8s.io/pod.uid": "1b7b",
                 "csi.storage.k8s.io/serviceAccount.name": "web",
                 "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(
                     {"api://AzureADTokenExchange": {"token": token,
                                                     "expirationTimestamp": "2030-01-01T00:00:00Z"}})}
        attrs.update(params)
        return attrs

    def mount_call(self, attributes, target=None):
        """(rc, {path: content}, the answer) of one Mount."""
        path = os.path.join(self.csi_dir, f"attrs-{uuid.uuid4().hex[:6]}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(attributes, f)
        p = subprocess.run([csi_client_binary(), "--socket", self.agent.socket,
                            "--attributes-file", path, "--secrets", "null", "--permission", "420",
                            "--target-path", target or self.default_target,
                            "--timeout-ms", "60000"], capture_output=True, text=True, timeout=90)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            out = {"raw": p.stdout, "stderr": p.stderr}
        files = {f["path"]: base64.b64decode(f["contents_base64"]).decode()
                 for f in out.get("files", [])} if p.returncode == 0 else {}
        return p.returncode, files, out

    def mount_ok(self, attributes, target=None):
        rc, files, out = self.mount_call(attributes, target)
        self.assertEqual(rc, 0, out)
        return files, out

    def remount_until(self, attributes, want, target=None):
        """Mounts again (reads are shared for two seconds) until the files are `want`."""
        last = {}

        def check():
            last["rc"], last["files"], last["out"] = self.mount_call(attributes, target)
            return last["rc"] == 0 and last["files"] == want
        self.assertTrue(wait_until(check, timeout=WAIT_S, interval=0.3), last)
        return last["out"]

    def kubelet_target(self, root, uid="1b7b", volume="secrets-store-inline"):
        target = os.path.join(root, "pods", uid, "volumes", "kubernetes.io~csi", volume, "mount")
        os.makedirs(target)
        return target

    @staticmethod
    def plant(directory, files):
        os.makedirs(directory, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                f.write(content)

    def test_optional_objects_and_last_known_from_the_kubelet_volume(self):
        base, _ = self.put_secret("csi-base")
        off, _ = self.put_secret("csi-off", enabled=False)
        root = tempfile.mkdtemp(prefix="kubelet-", dir=self.srv.root)
        target = self.kubelet_target(root)
        planted = {"csi-off": "previous off " + uuid.uuid4().hex,
                   "csi-gone": "previous gone " + uuid.uuid4().hex}
        self.plant(target, planted)
        attrs = self.attributes([
            "csi-base",
            {"objectName": "csi-off", "optional": "true", "optionalFallback": "lastKnown"},
            {"objectName": "csi-gone", "optional": "true", "optionalFallback": "lastKnown"},
            {"objectName": "csi-none", "optional": "true"}])
        files, out = self.mount_ok(attrs, target)
        self.assertEqual(files, {"csi-base": base, "csi-off": planted["csi-off"],
                                 "csi-gone": planted["csi-gone"]})
        self.assertTrue(all(f["mode"] == 420 for f in out["files"]), out["files"])
        versions = {o["id"]: o["version"] for o in out["object_version"]}
        self.assertTrue(versions.get("secret/csi-base"), versions)
        # What is not in the volume has no object version.
        self.assertNotIn("secret/csi-none", versions)
        # Anywhere else the previous content is not read: not another directory, not a kubelet
        # path that climbs out with "..".
        elsewhere = os.path.join(root, "elsewhere", "mount")
        self.plant(elsewhere, planted)
        files, _ = self.mount_ok(attrs, elsewhere)
        self.assertEqual(files, {"csi-base": base})
        os.makedirs(os.path.join(root, "pods", "u", "volumes", "kubernetes.io~csi", "v"))
        climbing = os.path.join(root, "pods", "u", "volumes", "kubernetes.io~csi", "v",
                                "..", "..", "..", "..", "..", "elsewhere", "mount")
        self.assertEqual(read_text(os.path.join(climbing, "csi-off")), planted["csi-off"])
        files, _ = self.mount_ok(attrs, climbing)
        self.assertEqual(files, {"csi-base": base})
        files, _ = self.mount_ok(attrs)  # the default target: a kubelet path with no files
        self.assertEqual(files, {"csi-base": base})
        # The gauges, under <namespace>/<pod>.
        labels = {"mount": self.POD, "object_type": "secret"}
        self.wait_metric(self.agent, "keyvault_object_optional_unavailable", 1,
                         object_name="csi-none", file="csi-none", reason="SecretNotFound",
                         **labels)
        self.wait_metric(self.agent, "keyvault_object_optional_unavailable", 1,
                         object_name="csi-off", reason="Forbidden", **labels)
        self.wait_metric(self.agent, "keyvault_object_disabled", 1, object_name="csi-off",
                         **labels)
        self.wait_metric(self.agent, "keyvault_object_version_info", 1, object_name="csi-base",
                         file="csi-base", **labels)
        # Enabled and created: a later Mount returns them.
        self.patch_secret("csi-off", enabled=True)
        none, _ = self.put_secret("csi-none")
        gone, _ = self.put_secret("csi-gone")
        self.remount_until(attrs, {"csi-base": base, "csi-off": off, "csi-gone": gone,
                                   "csi-none": none}, target)
        self.wait_metric(self.agent, "keyvault_object_optional_unavailable", 0,
                         object_name="csi-none", reason="", **labels)
        self.wait_metric(self.agent, "keyvault_object_disabled", 0, object_name="csi-off",
                         **labels)
        self.assertIn("csi-none", self.agent.output(), "the log named the object left out")
        self.assertNoSecrets(self.agent.output())

    def test_last_known_follows_the_volume_layout_but_no_symlink_out_of_it(self):
        base, _ = self.put_secret("csi-base2")
        root = tempfile.mkdtemp(prefix="kubelet-", dir=self.srv.root)
        target = self.kubelet_target(root)
        # The driver's layout (kubelet's atomic writer): <name> -> ..data/<name>.
        kept = "previous layout " + uuid.uuid4().hex
        self.plant(os.path.join(target, "..2026_01_01_00_00_00.1"), {"csi-layout": kept})
        os.symlink("..2026_01_01_00_00_00.1", os.path.join(target, "..data"))
        os.symlink("..data/csi-layout", os.path.join(target, "csi-layout"))
        # Links out of the volume: to a file, and to a directory.
        outside = os.path.join(root, "outside")
        secret = "outside the volume " + uuid.uuid4().hex
        self.plant(outside, {"file": secret})
        os.symlink(os.path.join(outside, "file"), os.path.join(target, "csi-link"))
        os.symlink(outside, os.path.join(target, "linked"))
        last_known = {"optional": "true", "optionalFallback": "lastKnown"}
        files, _ = self.mount_ok(self.attributes([
            "csi-base2", dict(last_known, objectName="csi-layout"),
            dict(last_known, objectName="csi-link"),
            dict(last_known, objectName="csi-dir", objectAlias="linked/file")]), target)
        self.assertEqual(files, {"csi-base2": base, "csi-layout": kept})

    def test_a_forbidden_optional_object_and_a_forbidden_required_one(self):
        vault = self.rbac_vault("csirbac")
        opened, _ = self.put_secret("c-open", vault="csirbac")
        closed, _ = self.put_secret("c-closed", vault="csirbac")
        principal = self.fed["principalId"]
        self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/c-open")
        optional = self.attributes(["c-open", {"objectName": "c-closed", "optional": "true"}],
                                   vault="csirbac")
        files, _ = self.mount_ok(optional)
        self.assertEqual(files, {"c-open": opened})
        self.wait_metric(self.agent, "keyvault_object_optional_unavailable", 1, mount=self.POD,
                         object_name="c-closed", reason="Forbidden")
        rc, _, out = self.mount_call(self.attributes(["c-open", "c-closed"], vault="csirbac"))
        self.assertEqual(rc, 2, out)
        self.assertEqual(out.get("grpc_code"), "PERMISSION_DENIED", out)
        self.assertIn("objectName:c-closed", out.get("message", ""), out)
        self.assign(SECRETS_USER, principal, vault["id"] + "/secrets/c-closed")
        self.remount_until(optional, {"c-open": opened, "c-closed": closed})
        self.assertNoSecrets(self.agent.output())

    def test_a_selection_its_cap_tags_and_hostile_selections(self):
        a, _ = self.put_secret("csel-a", tags={"tier": "1"})
        b, _ = self.put_secret("csel-b", tags={"tier": "1", "x": "y"})
        self.put_secret("csel-c", tags={"tier": "2"})
        objects = [{"objectSelector": {"namePrefix": "csel-", "tags": {"tier": "1"}},
                    "objectFileTemplate": "sel/{{suffix}}", "writeTags": "true",
                    "filePermission": "0440"}]
        files, out = self.mount_ok(self.attributes(objects))
        self.assertEqual(sorted(files), ["sel/a", "sel/a.tags.json", "sel/b", "sel/b.tags.json"])
        self.assertEqual((files["sel/a"], files["sel/b"]), (a, b))
        self.assertEqual(json.loads(files["sel/b.tags.json"]), {"tier": "1", "x": "y"})
        self.assertTrue(all(f["mode"] == 0o440 for f in out["files"]), out["files"])
        self.assertEqual(sorted({o["id"] for o in out["object_version"]}),
                         ["secret/csel-a", "secret/csel-b"])
        rc, _, out = self.mount_call(self.attributes(objects, objectSelectorLimit="1"))
        self.assertEqual(rc, 2, out)
        self.assertIn("more than objectSelectorLimit (1)", out.get("message", ""), out)
        self.assertIn(self.POD, out.get("message", ""), out)
        for selector, words in (
                ({"namePrefix": "csel-", "nameSuffix": "x"}, "objectSelector has an unknown key"),
                ({"namePrefix": "c" * 5000}, "objectSelector.namePrefix"),
                ({"namePrefix": "csel-", "tags": {f"t{i}": "v" for i in range(16)}},
                 "objectSelector.tags has 16 tags")):
            with self.subTest(words=words):
                rc, _, out = self.mount_call(self.attributes([{"objectSelector": selector}]))
                self.assertEqual(rc, 2, out)
                self.assertEqual(out.get("grpc_code"), "INVALID_ARGUMENT", out)
                self.assertIn(words, out.get("message", ""), out)
        files, _ = self.mount_ok(self.attributes(objects))
        self.assertEqual(sorted(files), ["sel/a", "sel/a.tags.json", "sel/b", "sel/b.tags.json"])
        self.assertNoSecrets(self.agent.output())


if __name__ == "__main__":
    unittest.main()
