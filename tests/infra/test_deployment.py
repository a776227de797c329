"""Deployments an admin runs, end to end without Azure: the azd environment's values go through
azd's parameter substitution (tests/infra/azd.py), main.bicep is evaluated with the result
(tests/infra/bicep.py), App Service resolves the Key Vault references, and the app's own
Settings model reads the app settings that come out.

The rule every scenario keeps: **either the deployment stops with a message that says what to
set, or the app it deploys starts** (Settings validates). An app that refuses to start, a pipeline
that ARM refuses, or a rotation that silently changes a key is a failure.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.core.settings import Settings
from tests.infra.azd import PIPELINE, USER, Login, ProvisionError, load_parameters, pipeline_escape
from tests.infra.bicep import (
    Context,
    DeploymentStopped,
    Instance,
    NotDeployed,
    Unknown,
    deploy,
    parse,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PARAMETERS = INFRA / "main.parameters.json"
ADMIN_GUIDE = ROOT / "docs" / "admin.md"

# What `azd env new` and the admin guide's first deployment put in .azure/<env>/.env.
FIRST_DEPLOYMENT = {
    "AZURE_ENV_NAME": "engagement-prod",
    "AZURE_LOCATION": "westeurope",
    "AZURE_SUBSCRIPTION_ID": "22222222-2222-2222-2222-222222222222",
    "ENTRA_AUDIENCE": "55555555-5555-5555-5555-555555555555",
}
MAILBOX_TENANT = "66666666-6666-6666-6666-666666666666"
GRAPH_APP = "77777777-7777-7777-7777-777777777777"
GRAPH_SECRET = "Gr~aph.Secret_With-Every~Kind.Of_Char8Q~x"  # the shape Entra ID issues


@dataclass
class Outcome:
    """A provisioning run: where it stopped, or what the app got."""

    stopped: str | None = None
    main: Instance | None = None
    settings: dict[str, str] | None = None  # app settings, Key Vault references resolved
    secrets: dict[str, str] | None = None  # Key Vault secrets by name


def provision(
    env: Mapping[str, str],
    login: Login = USER,
    config: dict[str, Any] | None = None,
    cloud: str = "AzureCloud",
) -> Outcome:
    """`azd provision` with this azd environment, as `login`, in `cloud`."""
    template = parse(MAIN)
    try:
        params = load_parameters(PARAMETERS, template, env, login, config)
        main = deploy(MAIN, params, Context(cloud=cloud))
        instances = list(main.instances())  # every module's parameters, checked as ARM does
    except (ProvisionError, DeploymentStopped) as stop:
        return Outcome(stopped=str(stop))
    secrets = {
        instance.params["name"]: instance.params["value"]
        for instance in instances
        if instance.template.path.name == "secret.bicep"
    }
    by_uri = {
        f"<{instance.path}.secret.properties.secretUri>": instance.params["value"]
        for instance in instances
        if instance.template.path.name == "secret.bicep"
    }

    def resolved(value: Any) -> str:
        text = str(value)
        reference = re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=(.*)\)", text)
        if reference and reference.group(1) in by_uri:
            return str(by_uri[reference.group(1)])
        return text  # App Service passes an unresolvable reference on as the literal text

    settings = {name: resolved(value) for name, value in app_settings(main).items()}
    return Outcome(main=main, settings=settings, secrets=secrets)


def app_settings(main: Instance) -> dict[str, Any]:
    """The Function App's app settings: the sites/config resource that writes them."""
    for instance in main.instances():
        for name, declared in instance.template.resources.items():
            if declared.target.startswith("Microsoft.Web/sites/config@") and instance.deployed(
                name
            ):
                body = instance.body(name)
                if body["name"] == "appsettings":
                    properties: dict[str, Any] = body["properties"]
                    return properties
        for name, declared in instance.template.modules.items():
            if "avm/res/web/site:" in declared.target:
                params = instance.body(name)["params"]
                if "appSettingsKeyValuePairs" in params:
                    merged: dict[str, Any] = params["appSettingsKeyValuePairs"]
                    return merged
    raise AssertionError("no app settings found in the templates")


def start_app(settings: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's Settings, read from exactly these app settings (as a worker starts)."""
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return Settings()


def keys(app: Settings) -> dict[str, str]:
    return {kid: key.get_secret_value() for kid, key in app.token_keys.items()}


def role_assignments(main: Instance) -> Iterator[dict[str, Any]]:
    """The properties of every role assignment that is deployed."""
    for instance in main.instances():
        for name, declared in instance.template.resources.items():
            assignment = declared.target.startswith("Microsoft.Authorization/roleAssignments@")
            if assignment and instance.deployed(name):
                yield instance.body(name)["properties"]


def assert_starts_or_stops_with_a_message(
    outcome: Outcome, monkeypatch: pytest.MonkeyPatch
) -> Settings | None:
    if outcome.stopped is not None:
        return None
    assert outcome.settings is not None
    try:
        return start_app(outcome.settings, monkeypatch)
    except ValidationError as error:
        pytest.fail(f"the deployment went through but the app refuses to start: {error}")


# ----------------------------------------------------------------------------- first deployment


def test_first_deployment_as_a_user_starts_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    config: dict[str, Any] = {}
    outcome = provision(FIRST_DEPLOYMENT, USER, config)
    assert outcome.stopped is None, outcome.stopped
    app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
    assert app is not None
    assert keys(app) == {"k1": config["tokenSigningKey"]}
    assert app.token_active_kid == "k1"
    assert app.entra_audience == FIRST_DEPLOYMENT["ENTRA_AUDIENCE"]
    assert app.graph_auth == "managed_identity"


# ----------------------------------------------------------------------------- key rotation


def rotation_steps() -> list[dict[str, str]]:
    """The admin guide's rotation commands: the `azd env set` lines of the first bash block of
    its Key rotation section, grouped by the `azd provision` that applies them."""
    section = ADMIN_GUIDE.read_text().split("## Key rotation for tracking links", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    steps: list[dict[str, str]] = []
    pending: dict[str, str] = {}
    for line in block.splitlines():
        command = line.split(" #", 1)[0].strip()
        if command.startswith("azd env set "):
            name, value = shlex.split(command)[3:5]
            pending[name] = value
        elif command.startswith("azd provision"):
            steps.append(pending)
            pending = {}
    return steps


def shell(value: str, variables: Mapping[str, str]) -> str:
    """$NAME and ${NAME} expanded as the shell would (the guide's variables only)."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"the rotation guide uses ${name}, which this test does not set"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", expand, value)


def test_rotation_guide_gives_the_command_that_returns_the_real_key() -> None:
    section = ADMIN_GUIDE.read_text().split("## Key rotation for tracking links", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "azd env config get infra.parameters.tokenSigningKey" in section
    assert "vault://" in section, "say why the value in config.json is not the key"


def run_rotation(
    login: Login, monkeypatch: pytest.MonkeyPatch, through_pipeline: bool
) -> list[Settings]:
    """Every provisioning of the guide's rotation, starting from a first deployment; from a
    pipeline, the environment arrives as `azd pipeline config` stored it."""
    config: dict[str, Any] = {}
    first = provision(FIRST_DEPLOYMENT, USER, config)
    assert first.stopped is None, first.stopped
    variables = {"K1": config["tokenSigningKey"], "NEW": "Rotated_key-" + "x2" * 24}
    env = dict(FIRST_DEPLOYMENT)
    apps = [start_app(first.settings or {}, monkeypatch)]
    steps = rotation_steps()
    assert steps, "the rotation guide has no `azd env set` ... `azd provision` steps"
    for step in steps:
        env.update({name: shell(value, variables) for name, value in step.items()})
        if through_pipeline:
            outcome = provision(pipeline_escape(ci_environment(env, config)), login, {})
        else:
            outcome = provision(env, login, config)
        assert outcome.stopped is None, f"after {sorted(step)}: {outcome.stopped}"
        app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
        assert app is not None
        apps.append(app)
    return apps


def ci_environment(env: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, str]:
    """What a pipeline set up by `azd pipeline config` has: the environment's values, and each
    value azd generated and kept in config.json under the variable main.parameters.json maps it
    to (azd pipeline config refuses a kept value that no variable maps)."""
    mapped = json.loads(PARAMETERS.read_text())["parameters"]
    ci = dict(env)
    for name, value in config.items():
        reference = re.fullmatch(r"\$\{(\w+)\}", str(mapped.get(name, {}).get("value", "")))
        if reference is None:
            raise AssertionError(
                f"azd pipeline config: parameter {name} got its value from a local prompt and "
                "has no mapped environment variable, so CI cannot have it"
            )
        ci[reference.group(1)] = str(value)
    return ci


@pytest.mark.parametrize("through_pipeline", [False, True], ids=["laptop", "pipeline"])
def test_rotation_as_documented_keeps_every_link_working(
    through_pipeline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = PIPELINE if through_pipeline else USER
    apps = run_rotation(login, monkeypatch, through_pipeline)
    first, last = apps[0], apps[-1]
    assert last.token_active_kid != first.token_active_kid, "the guide never switches keys"
    for earlier, later in itertools.pairwise(apps):
        for kid, key in keys(earlier).items():
            if kid in keys(later):
                assert keys(later)[kid] == key, f"{kid} changed: links signed with it break"
        assert earlier.token_active_kid in keys(later), "links signed just before stop working"
        assert later.token_active_kid in keys(earlier), (
            "a worker still on the previous settings cannot verify the new key's links"
        )


def test_json_in_a_string_parameter_stops_azd_provision() -> None:
    """azd's rule itself: the reason TOKEN_KEYS is not JSON."""
    env = {**FIRST_DEPLOYMENT, "TOKEN_KEYS": '{"k1": "' + "a" * 40 + '"}'}
    outcome = provision(env, USER, {})
    assert outcome.stopped is not None
    assert "unmarshalling" in outcome.stopped


def test_a_copied_vault_reference_stops_the_deployment() -> None:
    """Copying config.json's `vault://` value as "the current key" must not go through: it would
    replace the real k1 and break every link sent."""
    reference = "vault://8f0c1e6a-52a1-4f53-a3b1-0c8a5b0b9d11/2b9f4e3a-9c1d-4d7e-8b0a-6e2f1c3d4b5a"
    env = {**FIRST_DEPLOYMENT, "TOKEN_KEYS": f"k1:{reference},k2:{'n' * 48}"}
    outcome = provision(env, USER, {})
    assert outcome.stopped is not None
    assert "TOKEN_KEYS" in outcome.stopped


def test_the_app_refuses_a_key_that_is_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    for reference in (
        "vault://8f0c1e6a-52a1-4f53-a3b1-0c8a5b0b9d11/2b9f4e3a-9c1d-4d7e-8b0a-6e2f1c3d4b5a",
        "akvs://22222222-2222-2222-2222-222222222222/kv-name/token-keys",
        "@Microsoft.KeyVault(SecretUri=https://kv.example/secrets/token-keys)",
        "${TOKEN_SIGNING_KEY_FROM_SOMEWHERE_ELSE}",
    ):
        for environment in ("azure", "local"):
            settings = {
                "ENVIRONMENT": environment,
                "STORAGE_BLOB_URL": "https://st.blob.example/",
                "STORAGE_TABLE_URL": "https://st.table.example/",
                "AUTH_MODE": "dev" if environment == "local" else "entra",
                "ENTRA_ISSUER": "https://issuer.example/v2.0",
                "ENTRA_AUDIENCE": "aud",
                "ENTRA_JWKS_URL": "https://issuer.example/keys",
                "TOKEN_KEYS": json.dumps({"k1": reference, "k2": "n" * 48}),
                "TOKEN_ACTIVE_KID": "k2",
            }
            with pytest.raises(ValidationError, match="k1"):
                start_app(settings, monkeypatch)


# ----------------------------------------------------------------------------- CI logins


def test_deploying_from_a_pipeline_is_accepted_by_arm(monkeypatch: pytest.MonkeyPatch) -> None:
    """azd always fills AZURE_PRINCIPAL_ID with whoever is logged in; ARM refuses a role
    assignment whose principalType is not that principal's (UnmatchedPrincipalType)."""
    for login in (USER, PIPELINE):
        outcome = provision(FIRST_DEPLOYMENT, login, {})
        assert outcome.stopped is None, outcome.stopped
        assert outcome.main is not None
        assignments = list(role_assignments(outcome.main))
        assert assignments
        for assignment in assignments:
            principal = assignment["principalId"]
            if principal == login.principal_id:
                assert assignment["principalType"] == login.principal_type, assignment
            else:
                assert isinstance(principal, Unknown) and ".identity.outputs." in principal.label
                assert assignment["principalType"] == "ServicePrincipal"
        assert_starts_or_stops_with_a_message(outcome, monkeypatch)


def test_a_pipeline_principal_gets_no_data_access() -> None:
    """The data roles are for a person running `python -m shared.ops.cli`; a pipeline needs none."""
    outcome = provision(FIRST_DEPLOYMENT, PIPELINE, {})
    assert outcome.main is not None
    assert all(a["principalId"] != PIPELINE.principal_id for a in role_assignments(outcome.main))
    user = provision(FIRST_DEPLOYMENT, USER, {})
    assert user.main is not None
    mine = [a for a in role_assignments(user.main) if a["principalId"] == USER.principal_id]
    assert len(mine) == 2


# ----------------------------------------------------------------------------- Graph sign-in


def test_mailbox_tenant_other_than_the_azure_one(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        **FIRST_DEPLOYMENT,
        "GRAPH_AUTH": "client_secret",
        "GRAPH_TENANT_ID": MAILBOX_TENANT,
        "GRAPH_CLIENT_ID": GRAPH_APP,
        "GRAPH_CLIENT_SECRET": GRAPH_SECRET,
    }
    outcome = provision(env, USER, {})
    assert outcome.stopped is None, outcome.stopped
    app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
    assert app is not None
    assert app.graph_tenant_id == MAILBOX_TENANT
    assert app.graph_client_id == GRAPH_APP
    assert app.graph_client_secret is not None
    assert app.graph_client_secret.get_secret_value() == GRAPH_SECRET
    # Without GRAPH_TENANT_ID: the tenant the deployment signs in to.
    env.pop("GRAPH_TENANT_ID")
    outcome = provision(env, USER, {})
    assert outcome.settings is not None
    assert outcome.settings["GRAPH_TENANT_ID"] == Context().tenant_id


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        (("GRAPH_CLIENT_SECRET",), "GRAPH_CLIENT_SECRET"),
        (("GRAPH_CLIENT_ID",), "GRAPH_CLIENT_ID"),
        (("GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET"), "GRAPH_CLIENT_SECRET"),
    ],
)
def test_client_secret_sign_in_without_its_values_stops_before_deploying(
    missing: tuple[str, ...], named: str
) -> None:
    env = {
        **FIRST_DEPLOYMENT,
        "GRAPH_AUTH": "client_secret",
        "GRAPH_CLIENT_ID": GRAPH_APP,
        "GRAPH_CLIENT_SECRET": GRAPH_SECRET,
    }
    for name in missing:
        env.pop(name)
    outcome = provision(env, USER, {})
    assert outcome.stopped is not None, "deployed an app that cannot sign in to Graph"
    assert named in outcome.stopped


# ----------------------------------------------------------------------------- national clouds


@pytest.mark.parametrize("cloud", ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"])
def test_seller_tokens_are_checked_against_the_deployment_cloud(
    cloud: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.infra.bicep import CLOUDS

    login_endpoint = CLOUDS[cloud]["authentication"]["loginEndpoint"]
    outcome = provision(FIRST_DEPLOYMENT, USER, {}, cloud=cloud)
    app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
    assert app is not None
    tenant = Context().tenant_id
    assert app.entra_issuer == f"{login_endpoint}{tenant}/v2.0"
    assert app.entra_jwks_url == f"{login_endpoint}{tenant}/discovery/v2.0/keys"


def test_an_issuer_on_another_host_can_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure operated by 21Vianet signs in at one host and issues v2.0 tokens from another."""
    issuer = f"https://issuer.sovereign.example/{Context().tenant_id}/v2.0"
    env = {**FIRST_DEPLOYMENT, "ENTRA_ISSUER": issuer}
    outcome = provision(env, USER, {}, cloud="AzureChinaCloud")
    app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
    assert app is not None
    assert app.entra_issuer == issuer
    assert app.entra_jwks_url is not None
    assert app.entra_jwks_url.startswith("https://login.chinacloudapi.cn/")


def test_graph_endpoint_of_another_cloud_can_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**FIRST_DEPLOYMENT, "GRAPH_BASE_URL": "https://graph.sovereign.example/v1.0"}
    outcome = provision(env, USER, {}, cloud="AzureUSGovernment")
    app = assert_starts_or_stops_with_a_message(outcome, monkeypatch)
    assert app is not None
    assert app.graph_base_url == "https://graph.sovereign.example/v1.0"
    default = provision(FIRST_DEPLOYMENT, USER, {})
    assert default.settings is not None
    app = start_app(default.settings, monkeypatch)
    assert app.graph_base_url == Settings.model_fields["graph_base_url"].default


# ----------------------------------------------------------------------------- every mistake

MISTAKES: dict[str, dict[str, str]] = {
    "nothing set": {},
    "client secret, nothing else": {"GRAPH_AUTH": "client_secret"},
    "client secret, empty id": {
        "GRAPH_AUTH": "client_secret",
        "GRAPH_CLIENT_ID": "",
        "GRAPH_CLIENT_SECRET": GRAPH_SECRET,
    },
    "secret given, managed identity used": {"GRAPH_CLIENT_SECRET": GRAPH_SECRET},
    "active key not in the set": {"TOKEN_KEYS": f"k1:{'a' * 40}", "TOKEN_ACTIVE_KID": "k2"},
    "short key": {"TOKEN_KEYS": "k1:short"},
    "key id too long": {"TOKEN_KEYS": f"key-one-too-long:{'a' * 40}", "TOKEN_ACTIVE_KID": "k1"},
    "empty key id": {"TOKEN_KEYS": f":{'a' * 40}"},
    "spaces and a trailing comma": {
        "TOKEN_KEYS": f" k1:{'a' * 40} , k2:{'b' * 40} ,",
        "TOKEN_ACTIVE_KID": "k2",
    },
    "empty TOKEN_KEYS": {"TOKEN_KEYS": ""},
    "quote in a key": {"TOKEN_KEYS": "k1:" + "a" * 40 + '"'},
    "unknown storage sku": {"STORAGE_SKU_NAME": "Premium_LRS"},
    "retention as text": {"RETENTION_DAYS": "ninety"},
    "empty audience": {"ENTRA_AUDIENCE": ""},
    "outbox trial": {"DELIVERY_BACKEND": "outbox"},
    "custom tracking host": {"TRACKING_HOST_NAME": "track.contoso.example"},
}


@pytest.mark.parametrize("login", [USER, PIPELINE], ids=["user", "pipeline"])
@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_mistake_stops_the_deployment_or_the_app_starts(
    mistake: str, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**FIRST_DEPLOYMENT, **MISTAKES[mistake]}
    try:
        outcome = provision(env, login, {})
    except NotDeployed as error:
        pytest.fail(f"reads an output of something not deployed: {error}")
    assert_starts_or_stops_with_a_message(outcome, monkeypatch)


# ----------------------------------------------------------------------------- secrets


def test_secret_values_reach_only_key_vault() -> None:
    """Every @secure() value, with a value of its own, is found in Key Vault secrets and
    nowhere else: not in an output of any template, a non-secure module parameter, or an app
    setting (the app reads secrets through Key Vault references)."""
    marks = {
        "TOKEN_SIGNING_KEY": "SigningKeyMark" + "s" * 40,
        "TOKEN_KEYS": f"k1:{'KeysMarkOne' * 4},k2:{'KeysMarkTwo' * 4}",
        "GRAPH_CLIENT_SECRET": "GraphSecretMark" + "g" * 30,
    }
    env = {
        **FIRST_DEPLOYMENT,
        **marks,
        "GRAPH_AUTH": "client_secret",
        "GRAPH_CLIENT_ID": GRAPH_APP,
    }
    outcome = provision(env, USER, {})
    assert outcome.stopped is None, outcome.stopped
    assert outcome.main is not None and outcome.secrets is not None
    needles = ["SigningKeyMark", "KeysMarkOne", "KeysMarkTwo", "GraphSecretMark"]
    found_in_vault = json.dumps(outcome.secrets)
    for needle in needles[1:]:
        assert needle in found_in_vault, f"{needle} is not stored in Key Vault"

    for instance in outcome.main.instances():
        for name in instance.template.outputs:
            try:
                value = json.dumps(instance.output(name), default=str)
            except NotDeployed:
                continue
            for needle in needles:
                assert needle not in value, f"{instance.path} output {name} carries a secret"
        for name, declared in instance.template.modules.items():
            if not instance.deployed(name):
                continue
            child = instance.module(name)
            for param, value in instance.body(name).get("params", {}).items():
                secure = child is not None and child.template.params[param].secure
                text = json.dumps(value, default=str)
                for needle in needles:
                    if needle in text and not secure:
                        if param == "appSettings" and declared.target.endswith("settings.bicep"):
                            pytest.fail(f"app setting carries a secret: {text}")
                        pytest.fail(f"{instance.path}.{name}.{param} is not @secure()")
    assert not any(n in json.dumps(app_settings(outcome.main), default=str) for n in needles)
