// Conformance of Azure's authorization SDK, @azure/arm-authorization, with Coffer's
// Microsoft.Authorization provider, and of Key Vault's two permission models as the official
// data-plane client (@azure/keyvault-secrets) sees them.
//
// One real `coffer server --dev` process serves the whole file.  The dev administrator (Owner and
// Key Vault Administrator at the subscription) manages vaults, roles and assignments through
// @azure/arm-keyvault and @azure/arm-authorization; fresh service principals made with
// `coffer ad sp create-for-rbac` then read and write secrets through SecretClient.  The clients are
// configured as in the other suites: `endpoint` (the authority host, which also serves
// /subscriptions/...), the server's CA (tlsOptions.ca), the authority host and
// disableInstanceDiscovery; nothing else is opted out of.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

import { cliJson } from "./coffer-cli.mjs";
import { startCoffer } from "./coffer-server.mjs";

const RG = "rg-authz";
const ROLE = {
  secretsUser: "4633458b-17de-408a-b874-0445c86b69e6",
  secretsOfficer: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
  keyVaultReader: "21090545-7ca7-4776-b22c-e363652d74d2",
  owner: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
  contributor: "b24988ac-6180-42a0-ab88-20f7382dd24c",
};
const GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
const READ_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";

let coffer;
let tlsOptions;
let sub; // subscription id
let subScope; // "/subscriptions/<sub>"
let admin; // the dev administrator's credential
let adminObjectId;
let authz; // AuthorizationManagementClient as the administrator
let kv; // KeyVaultManagementClient as the administrator

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

function credentialFor(sp) {
  return new ClientSecretCredential(sp.tenant, sp.appId, sp.password, {
    authorityHost: coffer.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions,
  });
}

/** A new service principal: { appId, password, tenant, objectId, credential }. */
async function newServicePrincipal(name) {
  const sp = await cliJson(coffer, "ad", "sp", "create-for-rbac", "--name", name);
  const shown = await cliJson(coffer, "ad", "sp", "show", "--id", sp.appId);
  assert.equal(shown.appId, sp.appId);
  return { ...sp, objectId: shown.id, credential: credentialFor(sp) };
}

function roleDefinitionId(guid) {
  return `${subScope}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
}

function vaultScope(vault) {
  return `${subScope}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${vault}`;
}

function secretScope(vault, secret) {
  return `${vaultScope(vault)}/secrets/${secret}`;
}

/** Creates a vault in RG; `rbac` chooses the permission model.  Returns its vaultUri. */
async function createVault(name, rbac, accessPolicies = []) {
  const v = await kv.vaults.createOrUpdate(RG, name, {
    location: "local",
    properties: {
      tenantId: coffer.tenantId,
      sku: { family: "A", name: "standard" },
      enableRbacAuthorization: rbac,
      accessPolicies,
    },
  });
  assert.equal(v.properties.enableRbacAuthorization, rbac);
  return v.properties.vaultUri;
}

function policy(objectId, secrets) {
  return { tenantId: coffer.tenantId, objectId, permissions: { secrets } };
}

async function assign(scope, role, principalId, name = randomUUID()) {
  return authz.roleAssignments.create(scope, name, {
    roleDefinitionId: roleDefinitionId(role),
    principalId,
    principalType: "ServicePrincipal",
  });
}

/** Asserts a RestError with this HTTP status (and ARM/Key Vault error code). */
async function rejectsWith(promise, statusCode, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, statusCode, `status of ${err.message}`);
    if (code !== undefined) assert.equal(err.code, code, `error code of ${err.message}`);
    return true;
  });
}

/**
 * Asserts Key Vault's 403: code Forbidden, and the inner code naming the model in force
 * ("ForbiddenByRbac" or "AccessDenied").
 */
async function forbidden(promise, inner) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, 403, `status of ${err.message}`);
    assert.equal(err.code, "Forbidden", `error code of ${err.message}`);
    assert.equal(err.details?.error?.innerError?.code, inner, `inner error code of ${JSON.stringify(err.details)}`);
    return true;
  });
}

/**
 * The same for a listing.  keyvault-secrets 4.11.2's pager builds its RestError from the status
 * and the error's code alone ("Pagination failed with unexpected statusCode 403"): neither
 * `details` nor the body is kept, so the inner code cannot be seen through the SDK.
 */
async function listForbidden(pager) {
  await assert.rejects(collect(pager), (err) => {
    assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
    assert.equal(err.statusCode, 403, `status of ${err.message}`);
    assert.equal(err.code, "Forbidden", `error code of ${err.message}`);
    return true;
  });
}

describe("@azure/arm-authorization 9.0.0 and Key Vault's permission models against coffer", () => {
  before(async () => {
    coffer = await startCoffer();
    tlsOptions = { ca: coffer.ca };
    sub = coffer.env.COFFER_SUBSCRIPTION_ID;
    subScope = `/subscriptions/${sub}`;
    admin = new ClientSecretCredential(
      coffer.env.AZURE_TENANT_ID,
      coffer.env.AZURE_CLIENT_ID,
      coffer.env.AZURE_CLIENT_SECRET,
      { authorityHost: coffer.authorityHost, disableInstanceDiscovery: true, tlsOptions },
    );
    adminObjectId = (await cliJson(coffer, "ad", "sp", "show", "--id", coffer.env.AZURE_CLIENT_ID)).id;
    const armOptions = { endpoint: coffer.authorityHost, tlsOptions };
    authz = new AuthorizationManagementClient(admin, sub, armOptions);
    kv = new KeyVaultManagementClient(admin, sub, armOptions);
  });

  after(async () => {
    if (coffer) await coffer.cleanup();
  });

  describe("role definitions", () => {
    it("roleDefinitions.list with filter roleName eq 'Key Vault Secrets User' returns the built-in role with its GUID and data actions", async () => {
      const found = await collect(
        authz.roleDefinitions.list(subScope, { filter: "roleName eq 'Key Vault Secrets User'" }),
      );
      assert.equal(found.length, 1, JSON.stringify(found));
      const [role] = found;
      assert.equal(role.name, ROLE.secretsUser);
      assert.equal(role.id, roleDefinitionId(ROLE.secretsUser));
      assert.equal(role.type, "Microsoft.Authorization/roleDefinitions");
      assert.equal(role.roleName, "Key Vault Secrets User");
      assert.equal(role.roleType, "BuiltInRole");
      assert.deepEqual(role.assignableScopes, ["/"]);
      assert.equal(role.permissions.length, 1);
      assert.deepEqual(role.permissions[0].actions, []);
      assert.deepEqual([...role.permissions[0].dataActions].sort(), [GET_SECRET, READ_METADATA].sort());
    });

    it("roleDefinitions.get and the type eq 'BuiltInRole' filter know Azure's built-in roles by their GUIDs", async () => {
      const builtIns = await collect(authz.roleDefinitions.list(subScope, { filter: "type eq 'BuiltInRole'" }));
      const byName = new Map(builtIns.map((r) => [r.roleName, r.name]));
      assert.equal(byName.get("Key Vault Secrets User"), ROLE.secretsUser);
      assert.equal(byName.get("Key Vault Secrets Officer"), ROLE.secretsOfficer);
      assert.equal(byName.get("Key Vault Reader"), ROLE.keyVaultReader);
      assert.equal(byName.get("Owner"), ROLE.owner);
      assert.equal(byName.get("Contributor"), ROLE.contributor);
      for (const r of builtIns) assert.equal(r.roleType, "BuiltInRole", r.roleName);

      const officer = await authz.roleDefinitions.get(subScope, ROLE.secretsOfficer);
      assert.equal(officer.roleName, "Key Vault Secrets Officer");
      assert.ok(
        officer.permissions[0].dataActions.includes("Microsoft.KeyVault/vaults/secrets/*"),
        JSON.stringify(officer.permissions),
      );
    });

    it("roleDefinitions.get of an unknown GUID fails with 404 RoleDefinitionDoesNotExist", async () => {
      await rejectsWith(authz.roleDefinitions.get(subScope, randomUUID()), 404, "RoleDefinitionDoesNotExist");
    });

    it("roleDefinitions.createOrUpdate creates a custom role, list and get show it, roleDefinitions.delete removes it", async () => {
      const id = randomUUID();
      const created = await authz.roleDefinitions.createOrUpdate(subScope, id, {
        roleName: "Secret lister (sdk-js)",
        description: "Reads secret metadata only",
        roleType: "CustomRole",
        permissions: [{ actions: [], notActions: [], dataActions: [READ_METADATA], notDataActions: [] }],
        assignableScopes: [subScope],
      });
      assert.equal(created.name, id);
      assert.equal(created.id, roleDefinitionId(id));
      assert.equal(created.roleName, "Secret lister (sdk-js)");
      assert.equal(created.roleType, "CustomRole");
      assert.deepEqual(created.permissions[0].dataActions, [READ_METADATA]);
      assert.deepEqual(created.assignableScopes, [subScope]);

      const customs = await collect(authz.roleDefinitions.list(subScope, { filter: "type eq 'CustomRole'" }));
      assert.deepEqual(customs.map((r) => r.name), [id]);
      assert.equal((await authz.roleDefinitions.get(subScope, id)).description, "Reads secret metadata only");

      const deleted = await authz.roleDefinitions.delete(subScope, id);
      assert.equal(deleted.name, id);
      await rejectsWith(authz.roleDefinitions.get(subScope, id), 404, "RoleDefinitionDoesNotExist");
      assert.deepEqual(await collect(authz.roleDefinitions.list(subScope, { filter: "type eq 'CustomRole'" })), []);
    });

    it("a built-in role cannot be deleted", async () => {
      // Only the refusal is asserted: which 4xx Azure answers here is not documented.
      await assert.rejects(authz.roleDefinitions.delete(subScope, ROLE.secretsUser), (err) => {
        assert.equal(err.name, "RestError", `expected a RestError, got ${err.name}: ${err.message}`);
        assert.ok(err.statusCode >= 400 && err.statusCode < 500, `status of ${err.message}`);
        return true;
      });
      const still = await authz.roleDefinitions.get(subScope, ROLE.secretsUser);
      assert.equal(still.roleName, "Key Vault Secrets User");
    });
  });

  describe("role assignments", () => {
    const vault = "authzassign";
    let sp;

    before(async () => {
      sp = await newServicePrincipal("authz-assignee");
      const uri = await createVault(vault, true);
      await new SecretClient(uri, admin, { tlsOptions }).setSecret("one", "first");
    });

    it("roleAssignments.create at a vault scope returns the assignment; get, getById, the list operations and delete see it", async () => {
      const name = randomUUID();
      const scope = vaultScope(vault);
      const created = await assign(scope, ROLE.secretsUser, sp.objectId, name);
      assert.equal(created.name, name);
      assert.equal(created.id, `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`);
      assert.equal(created.type, "Microsoft.Authorization/roleAssignments");
      assert.equal(created.scope, scope);
      assert.equal(created.roleDefinitionId, roleDefinitionId(ROLE.secretsUser));
      assert.equal(created.principalId, sp.objectId);
      assert.equal(created.principalType, "ServicePrincipal");
      assert.ok(created.createdOn instanceof Date && !Number.isNaN(created.createdOn.getTime()));

      const got = await authz.roleAssignments.get(scope, name);
      assert.deepEqual(
        { id: got.id, scope: got.scope, roleDefinitionId: got.roleDefinitionId, principalId: got.principalId },
        { id: created.id, scope, roleDefinitionId: created.roleDefinitionId, principalId: sp.objectId },
      );
      assert.equal((await authz.roleAssignments.getById(created.id)).name, name);

      // Lists: at the vault (with and without atScope()), at the subscription, by principal.
      const atVault = await collect(authz.roleAssignments.listForScope(scope));
      assert.ok(atVault.some((a) => a.name === name), "listForScope(vault) includes it");
      const atVaultOnly = await collect(authz.roleAssignments.listForScope(scope, { filter: "atScope()" }));
      assert.ok(atVaultOnly.some((a) => a.name === name), "listForScope(vault, atScope()) includes it");
      // atScope() at the vault also lists what is assigned above it: the administrator's roles.
      assert.ok(
        atVaultOnly.some((a) => a.scope === subScope && a.principalId === adminObjectId),
        "atScope() at the vault includes the subscription's assignments",
      );
      const belowSub = await collect(authz.roleAssignments.listForScope(subScope));
      assert.ok(belowSub.some((a) => a.name === name), "listForScope(subscription) includes scopes below it");
      const atSubOnly = await collect(authz.roleAssignments.listForScope(subScope, { filter: "atScope()" }));
      assert.ok(!atSubOnly.some((a) => a.name === name), "atScope() at the subscription leaves out the vault's");
      assert.ok(atSubOnly.every((a) => a.scope === subScope), JSON.stringify(atSubOnly.map((a) => a.scope)));

      const mine = await collect(
        authz.roleAssignments.listForSubscription({ filter: `principalId eq '${sp.objectId}'` }),
      );
      assert.deepEqual(mine.map((a) => a.name), [name]);
      const assignedTo = await collect(
        authz.roleAssignments.listForScope(subScope, { filter: `assignedTo('${sp.objectId}')` }),
      );
      assert.deepEqual(assignedTo.map((a) => a.name), [name]);

      const deleted = await authz.roleAssignments.delete(scope, name);
      assert.equal(deleted.name, name);
      assert.equal(deleted.principalId, sp.objectId);
      await rejectsWith(authz.roleAssignments.get(scope, name), 404, "RoleAssignmentNotFound");
      assert.deepEqual(
        await collect(authz.roleAssignments.listForSubscription({ filter: `principalId eq '${sp.objectId}'` })),
        [],
      );
    });

    it("roleAssignments.create at a secret scope: get, listForScope and delete work at that scope", async () => {
      const name = randomUUID();
      const scope = secretScope(vault, "one");
      const created = await assign(scope, ROLE.secretsUser, sp.objectId, name);
      assert.equal(created.scope, scope);
      assert.equal(created.id, `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`);
      assert.equal((await authz.roleAssignments.get(scope, name)).principalId, sp.objectId);

      const atSecret = await collect(authz.roleAssignments.listForScope(scope, { filter: "atScope()" }));
      assert.ok(atSecret.some((a) => a.name === name));
      const atVaultOnly = await collect(authz.roleAssignments.listForScope(vaultScope(vault), { filter: "atScope()" }));
      assert.ok(!atVaultOnly.some((a) => a.name === name), "atScope() at the vault leaves out the secret's");
      const atVault = await collect(authz.roleAssignments.listForScope(vaultScope(vault)));
      assert.ok(atVault.some((a) => a.name === name), "listForScope(vault) includes the secret's");

      // The assignment lives at the secret: it is not found at the vault.
      await rejectsWith(authz.roleAssignments.get(vaultScope(vault), name), 404, "RoleAssignmentNotFound");
      assert.equal((await authz.roleAssignments.delete(scope, name)).name, name);
      await rejectsWith(authz.roleAssignments.get(scope, name), 404, "RoleAssignmentNotFound");
    });

    it("the same role for the same principal at the same scope twice fails with 409 RoleAssignmentExists", async () => {
      const scope = vaultScope(vault);
      const first = await assign(scope, ROLE.secretsOfficer, sp.objectId);
      await rejectsWith(assign(scope, ROLE.secretsOfficer, sp.objectId), 409, "RoleAssignmentExists");
      // Re-sending the same assignment under its own name is idempotent.
      const again = await assign(scope, ROLE.secretsOfficer, sp.objectId, first.name);
      assert.equal(again.id, first.id);
      await authz.roleAssignments.delete(scope, first.name);
    });

    it("an unknown principal fails with 400 PrincipalNotFound", async () => {
      // Sent without principalType: Azure documents principalType as the way around its
      // directory lookup for new principals (replication delay), so the check is asserted
      // only where Azure certainly makes it.
      await rejectsWith(
        authz.roleAssignments.create(vaultScope(vault), randomUUID(), {
          roleDefinitionId: roleDefinitionId(ROLE.secretsUser),
          principalId: randomUUID(),
        }),
        400,
        "PrincipalNotFound",
      );
    });

    it("an unknown role definition fails with 400 RoleDefinitionDoesNotExist", async () => {
      await rejectsWith(assign(vaultScope(vault), randomUUID(), sp.objectId), 400, "RoleDefinitionDoesNotExist");
    });

    it("a service principal without a role cannot create role assignments: 403 AuthorizationFailed", async () => {
      const own = new AuthorizationManagementClient(sp.credential, sub, { endpoint: coffer.authorityHost, tlsOptions });
      await rejectsWith(
        own.roleAssignments.create(vaultScope(vault), randomUUID(), {
          roleDefinitionId: roleDefinitionId(ROLE.secretsOfficer),
          principalId: sp.objectId,
        }),
        403,
        "AuthorizationFailed",
      );
    });
  });

  describe("SecretClient on an Azure RBAC vault", () => {
    const vault = "authzrbac";
    let sp;
    let secrets; // SecretClient as the service principal

    before(async () => {
      sp = await newServicePrincipal("rbac-reader");
      const uri = await createVault(vault, true);
      const asAdmin = new SecretClient(uri, admin, { tlsOptions });
      await asAdmin.setSecret("one", "value-one");
      await asAdmin.setSecret("two", "value-two");
      secrets = new SecretClient(uri, sp.credential, { tlsOptions });
    });

    it("before any assignment getSecret, listing and setSecret are 403 Forbidden (ForbiddenByRbac), even for a missing name", async () => {
      await forbidden(secrets.getSecret("one"), "ForbiddenByRbac");
      await forbidden(secrets.getSecret("does-not-exist"), "ForbiddenByRbac");
      await listForbidden(secrets.listPropertiesOfSecrets());
      await forbidden(secrets.setSecret("one", "nope"), "ForbiddenByRbac");
    });

    it("Key Vault Secrets User at the vault reads every secret, but setSecret and deletion stay 403", async () => {
      const a = await assign(vaultScope(vault), ROLE.secretsUser, sp.objectId);
      try {
        assert.equal((await secrets.getSecret("one")).value, "value-one");
        assert.equal((await secrets.getSecret("two")).value, "value-two");
        await rejectsWith(secrets.getSecret("does-not-exist"), 404, "SecretNotFound");
        const names = (await collect(secrets.listPropertiesOfSecrets())).map((p) => p.name).sort();
        assert.deepEqual(names, ["one", "two"]);
        await forbidden(secrets.setSecret("one", "overwrite"), "ForbiddenByRbac");
        await forbidden(secrets.beginDeleteSecret("one"), "ForbiddenByRbac");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
      }
      // Deleting the assignment takes effect on the next request.
      await forbidden(secrets.getSecret("one"), "ForbiddenByRbac");
    });

    it("Key Vault Secrets User at one secret grants only that secret", async () => {
      const a = await assign(secretScope(vault, "one"), ROLE.secretsUser, sp.objectId);
      try {
        assert.equal((await secrets.getSecret("one")).value, "value-one");
        await forbidden(secrets.getSecret("two"), "ForbiddenByRbac");
        // Listing is an operation on the vault, which the assignment does not cover.
        await listForbidden(secrets.listPropertiesOfSecrets());
        await forbidden(secrets.setSecret("one", "overwrite"), "ForbiddenByRbac");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
      }
      await forbidden(secrets.getSecret("one"), "ForbiddenByRbac");
    });

    it("Key Vault Secrets Officer at the resource group lets the principal set and delete secrets", async () => {
      const a = await assign(`${subScope}/resourceGroups/${RG}`, ROLE.secretsOfficer, sp.objectId);
      try {
        const set = await secrets.setSecret("three", "value-three");
        assert.equal(set.value, "value-three");
        assert.equal((await secrets.getSecret("three")).value, "value-three");
        await (await secrets.beginDeleteSecret("three", { intervalInMs: 50 })).pollUntilDone();
        await rejectsWith(secrets.getSecret("three"), 404, "SecretNotFound");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
      }
      await forbidden(secrets.setSecret("three", "again"), "ForbiddenByRbac");
    });

    it("a custom role with only readMetadata lists secrets but cannot read their values", async () => {
      const id = randomUUID();
      await authz.roleDefinitions.createOrUpdate(subScope, id, {
        roleName: "Secret metadata reader (sdk-js)",
        roleType: "CustomRole",
        permissions: [{ actions: [], dataActions: [READ_METADATA] }],
        assignableScopes: [subScope],
      });
      const a = await assign(vaultScope(vault), id, sp.objectId);
      try {
        const names = (await collect(secrets.listPropertiesOfSecrets())).map((p) => p.name).sort();
        assert.deepEqual(names, ["one", "two"]);
        await forbidden(secrets.getSecret("one"), "ForbiddenByRbac");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
        await authz.roleDefinitions.delete(subScope, id);
      }
    });
  });

  describe("SecretClient on an access-policy vault", () => {
    const vault = "authzpolicy";
    let sp;
    let secrets;

    before(async () => {
      sp = await newServicePrincipal("policy-reader");
      const uri = await createVault(vault, false, [policy(adminObjectId, ["all"])]);
      await new SecretClient(uri, admin, { tlsOptions }).setSecret("one", "value-one");
      secrets = new SecretClient(uri, sp.credential, { tlsOptions });
    });

    it("without a policy every request is 403 Forbidden (AccessDenied)", async () => {
      await forbidden(secrets.getSecret("one"), "AccessDenied");
      await forbidden(secrets.getSecret("does-not-exist"), "AccessDenied");
      await listForbidden(secrets.listPropertiesOfSecrets());
      await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");
    });

    it("role assignments do not apply: Key Vault Secrets Officer at the vault still gets 403 AccessDenied", async () => {
      const a = await assign(vaultScope(vault), ROLE.secretsOfficer, sp.objectId);
      try {
        await forbidden(secrets.getSecret("one"), "AccessDenied");
        await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
      }
    });

    it("updateAccessPolicy add grants exactly the listed permissions, and a second add merges", async () => {
      const added = await kv.vaults.updateAccessPolicy(RG, vault, "add", {
        properties: { accessPolicies: [policy(sp.objectId, ["get"])] },
      });
      const entry = added.properties.accessPolicies.find((p) => p.objectId === sp.objectId);
      assert.deepEqual(entry?.permissions?.secrets, ["get"]);
      assert.equal((await secrets.getSecret("one")).value, "value-one");
      await rejectsWith(secrets.getSecret("does-not-exist"), 404, "SecretNotFound");
      await listForbidden(secrets.listPropertiesOfSecrets());
      await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");

      await kv.vaults.updateAccessPolicy(RG, vault, "add", {
        properties: { accessPolicies: [policy(sp.objectId, ["set"])] },
      });
      const merged = (await kv.vaults.get(RG, vault)).properties.accessPolicies.find((p) => p.objectId === sp.objectId);
      assert.deepEqual([...merged.permissions.secrets].sort(), ["get", "set"]);
      const set = await secrets.setSecret("one", "value-one-b");
      assert.equal(set.value, "value-one-b");
      assert.equal((await secrets.getSecret("one")).value, "value-one-b");
    });

    it("updateAccessPolicy replace swaps the permission list", async () => {
      const replaced = await kv.vaults.updateAccessPolicy(RG, vault, "replace", {
        properties: { accessPolicies: [policy(sp.objectId, ["list"])] },
      });
      const entry = replaced.properties.accessPolicies.find((p) => p.objectId === sp.objectId);
      assert.deepEqual(entry?.permissions?.secrets, ["list"]);
      assert.deepEqual((await collect(secrets.listPropertiesOfSecrets())).map((p) => p.name), ["one"]);
      await forbidden(secrets.getSecret("one"), "AccessDenied");
      await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");
    });

    it("updateAccessPolicy remove takes the principal's access away", async () => {
      const removed = await kv.vaults.updateAccessPolicy(RG, vault, "remove", {
        properties: { accessPolicies: [policy(sp.objectId, ["list"])] },
      });
      assert.ok(!removed.properties.accessPolicies.some((p) => p.objectId === sp.objectId));
      await listForbidden(secrets.listPropertiesOfSecrets());
      await forbidden(secrets.getSecret("one"), "AccessDenied");
      const got = await kv.vaults.get(RG, vault);
      assert.deepEqual(got.properties.accessPolicies.map((p) => p.objectId), [adminObjectId]);
    });
  });

  describe("switching the permission model", () => {
    const vault = "authzswitch";
    let sp;
    let secrets;

    before(async () => {
      sp = await newServicePrincipal("switcher");
      const uri = await createVault(vault, false, [
        policy(adminObjectId, ["all"]),
        policy(sp.objectId, ["get", "list"]),
      ]);
      await new SecretClient(uri, admin, { tlsOptions }).setSecret("one", "value-one");
      secrets = new SecretClient(uri, sp.credential, { tlsOptions });
    });

    it("vaults.update with enableRbacAuthorization takes effect on the very next SecretClient request, both ways", async () => {
      // Access policies: the policy grants get, not set.
      assert.equal((await secrets.getSecret("one")).value, "value-one");
      await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");

      // Azure RBAC: the policy no longer counts and there is no assignment yet.
      const toRbac = await kv.vaults.update(RG, vault, { properties: { enableRbacAuthorization: true } });
      assert.equal(toRbac.properties.enableRbacAuthorization, true);
      await forbidden(secrets.getSecret("one"), "ForbiddenByRbac");

      const a = await assign(vaultScope(vault), ROLE.secretsOfficer, sp.objectId);
      try {
        assert.equal((await secrets.setSecret("one", "value-one-rbac")).value, "value-one-rbac");
        assert.equal((await secrets.getSecret("one")).value, "value-one-rbac");

        // Back to access policies: the assignment no longer counts, the kept policy does again.
        const toPolicies = await kv.vaults.update(RG, vault, { properties: { enableRbacAuthorization: false } });
        assert.equal(toPolicies.properties.enableRbacAuthorization, false);
        await forbidden(secrets.setSecret("one", "nope"), "AccessDenied");
        assert.equal((await secrets.getSecret("one")).value, "value-one-rbac");
      } finally {
        await authz.roleAssignments.delete(a.scope, a.name);
      }
    });
  });

  describe("server process", () => {
    it("the server exits with status 0 on SIGTERM (no sanitizer report)", async () => {
      const result = await coffer.stop();
      assert.deepEqual(
        { code: result.code, signal: result.signal },
        { code: 0, signal: null },
        `exit status after SIGTERM\n--- log tail ---\n${coffer.logs().slice(-3000)}`,
      );
    });
  });
});
