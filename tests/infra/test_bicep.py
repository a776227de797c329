"""The Bicep templates under infra/: each parses with the parser checkov uses, and they agree with
the code. Every setting the app reads is set in Azure and nothing set goes unread (checked against
the live Settings model), the containers and tables are the ones shared/core/storage.py names, and
one retention parameter drives both the lifecycle rule and RETENTION_DAYS. No template hard-codes
a cloud's host or a principal's type, and no output reads a secure parameter.

App settings are the keys of the object literals that reach the Function App's appsettings
resource, through union(), conditionals, variables and the parameter main.bicep passes in, read
from the templates by tests/infra/bicep.py (pycep writes a string and a name alike, so it only
checks that the files parse). Comments are not in the parse tree, so the checks about comments
(role names beside role ids) and hosts read the text.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.core.settings import Settings
from shared.core.storage import CONTAINERS, INTERACTIONS, QUEUES, TABLES
from tests.infra import bicep

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# App settings the Functions host reads, not our code, so they are not fields of Settings.
HOST_SETTINGS = {
    # The host's own storage (timer schedule state and locks) through the managed identity,
    # instead of an AzureWebJobsStorage connection string with a key.
    "AzureWebJobsStorage__credential": "use a managed identity for the host's storage",
    "AzureWebJobsStorage__clientId": "which identity: the user-assigned one",
    # Blobs only: timers keep their state and locks in blobs, so there is no
    # __queueServiceUri or __tableServiceUri for the host's own storage.
    "AzureWebJobsStorage__blobServiceUri": "the host's blob endpoint",
    # The fold_shard queue trigger's connection (functions/timers/fold.py QUEUE_CONNECTION).
    "STORAGE__credential": "the queue trigger reads with a managed identity",
    "STORAGE__clientId": "which identity: the user-assigned one",
    "STORAGE__queueServiceUri": "the fold-shards queue's endpoint",
    # Telemetry signed in with the managed identity, since the component refuses local auth
    # (read by the host and by the Azure Monitor exporter; APPLICATIONINSIGHTS_CONNECTION_STRING
    # is a field of Settings, read by shared/core/telemetry.py as well as by the host).
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID auth for telemetry",
}

# Fields of Settings that are deliberately not set in Azure.
NOT_SET_IN_AZURE = {
    "STORAGE_CONNECTION_STRING": "storage is reached by URL and managed identity; no keys",
    "DEV_AUTH_KEY": "development seller tokens only; AUTH_MODE=entra in Azure",
    "GRAPH_STATIC_TOKEN": "the local Graph stand-in only; refused outside local",
    "GRAPH_CERTIFICATE_PATH": "Flex Consumption cannot load certificates onto the worker",
}

# Built-in Azure role ids the templates may assign, and the role each one is.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def _parsed(relative: str) -> dict[str, Any]:
    result: dict[str, Any] = _parser().parse(file_path=INFRA / relative)
    return result


def _module_params(template: dict[str, Any], name: str) -> dict[str, Any]:
    config = template["modules"][name]["config"]
    config = config.get("config", config)  # a module declared with `if (...)` nests one level
    params: dict[str, Any] = config["params"]
    return params


def _setting_names(
    node: bicep.Node, template: bicep.Template, passed_in: dict[str, set[str]]
) -> set[str]:
    """The names an app-settings expression can produce: the keys of every object literal in it,
    through union(), conditionals, the template's variables and parameters given in passed_in."""
    kind = node[0]
    if kind == "ref":
        if node[1] in template.variables:
            return _setting_names(template.variables[node[1]], template, passed_in)
        return passed_in.get(node[1], set())
    if kind == "call":
        assert node[1] == "union", f"unexpected {node[1]}() in app settings"
        return set().union(*(_setting_names(a, template, passed_in) for a in node[2]))
    if kind == "ternary":
        return _setting_names(node[2], template, passed_in) | _setting_names(
            node[3], template, passed_in
        )
    if kind == "object":
        names = set()
        for key, _ in node[1]:
            assert key[0] == "str" and len(key[1]) == 1, "an app setting name is computed"
            names.add(key[1][0])
        return names
    raise AssertionError(f"unexpected {kind} in app settings")


def _app_settings_resource() -> tuple[str, bicep.Template, bicep.Declared]:
    """The module main.bicep deploys that writes the app settings, its template and resource."""
    main = bicep.parse(INFRA / "main.bicep")
    found = []
    for name, module in main.modules.items():
        if module.target.startswith("br"):
            continue
        template = bicep.parse((INFRA / module.target).resolve())
        for resource in template.resources.values():
            if resource.target.startswith("Microsoft.Web/sites/config@"):
                found.append((name, template, resource))
    assert len(found) == 1, f"one resource writes the app settings, not {len(found)}"
    return found[0]


def _object(node: bicep.Node) -> dict[str, bicep.Node]:
    assert node[0] == "object", node
    return {key[1][0]: value for key, value in node[1]}


def _bicep_app_settings() -> set[str]:
    """Every app setting name the Function App gets: main.bicep's settings, passed to the
    settings module as `appSettings`, merged there with the host's settings."""
    main = bicep.parse(INFRA / "main.bicep")
    module, template, resource = _app_settings_resource()
    params = _object(_object(main.modules[module].body)["params"])
    from_main = {
        name: _setting_names(value, main, {})
        for name, value in params.items()
        if name == "appSettings"
    }
    properties = _object(resource.body)["properties"]
    return _setting_names(properties, template, from_main)


def _settings_read_by_the_app() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_parses(path: Path) -> None:
    template = _parsed(str(path.relative_to(INFRA)))
    assert template.get("resources") or template.get("modules") or template.get("outputs")
    read = bicep.parse(path)
    assert set(read.params) == set(template.get("parameters", {}))
    assert set(read.resources) | set(read.modules) == set(template.get("resources", {})) | set(
        template.get("modules", {})
    )


def test_there_are_templates_to_check() -> None:
    names = {str(p.relative_to(INFRA)) for p in BICEP_FILES}
    assert {"main.bicep", "app/api.bicep", "app/storage.bicep", "app/keyvault.bicep"} <= names


def test_every_setting_the_app_reads_is_set_in_azure() -> None:
    missing = _settings_read_by_the_app() - set(NOT_SET_IN_AZURE) - _bicep_app_settings()
    assert not missing, (
        f"read by shared/core/settings.py but not set in infra/main.bicep: {missing}"
    )


def test_every_setting_set_in_azure_is_read() -> None:
    unread = _bicep_app_settings() - _settings_read_by_the_app() - set(HOST_SETTINGS)
    assert not unread, f"set in infra/ but read by neither the app nor the host: {unread}"


def test_host_settings_are_all_set() -> None:
    missing = set(HOST_SETTINGS) - _bicep_app_settings()
    assert not missing, f"host settings missing from infra/app/settings.bicep: {missing}"


def test_settings_left_out_on_purpose_exist_and_stay_out() -> None:
    stale = set(NOT_SET_IN_AZURE) - _settings_read_by_the_app()
    assert not stale, f"no longer fields of Settings, drop them from NOT_SET_IN_AZURE: {stale}"
    set_anyway = set(NOT_SET_IN_AZURE) & _bicep_app_settings()
    assert not set_anyway, f"set in Azure although listed as left out: {set_anyway}"


def test_containers_and_tables_are_the_ones_the_app_uses() -> None:
    variables = _parsed("app/storage.bicep")["variables"]
    assert set(variables["containerNames"]["value"]) == set(CONTAINERS)
    assert set(variables["tableNames"]["value"]) == set(TABLES)
    assert set(variables["queueNames"]["value"]) == {*QUEUES, *(f"{q}-poison" for q in QUEUES)}


def test_one_retention_parameter_drives_the_lifecycle_rule_and_the_app() -> None:
    main = _parsed("main.bicep")
    default = main["parameters"]["retentionDays"]["default"]
    assert default == Settings.model_fields["retention_days"].default
    settings = bicep.parse(INFRA / "main.bicep").variables["appSettings"]
    assert settings[0] == "call" and settings[1] == "union"
    assert _object(settings[2][0])["RETENTION_DAYS"] == (
        "call",
        "string",
        [("ref", "retentionDays")],
    )
    assert _module_params(main, "storage")["retentionDays"] == "retentionDays"

    storage = _parsed("app/storage.bicep")
    (rule,) = storage["resources"]["lifecycle"]["config"]["properties"]["policy"]["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == [f"{INTERACTIONS}/"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert delete == {"daysAfterModificationGreaterThan": "retentionDays"}


def test_storage_takes_no_keys_and_no_anonymous_reads() -> None:
    account = _parsed("app/storage.bicep")["resources"]["account"]["config"]["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    for path in BICEP_FILES:
        text = path.read_text()
        for needle in ("listKeys", "AccountKey=", "SharedAccessKey"):
            assert needle not in text, f"{path.name} uses a storage key ({needle})"


def test_key_vault_is_rbac_only_and_purge_protected() -> None:
    vault = _parsed("app/keyvault.bicep")["resources"]["vault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True


def test_secrets_reach_the_app_as_key_vault_references() -> None:
    settings = bicep.parse(INFRA / "main.bicep").variables["appSettings"]
    found = {}
    for argument in settings[2]:
        objects = [argument] if argument[0] == "object" else [argument[2], argument[3]]
        for node in objects:
            if node[0] == "object":
                found.update(_object(node))
    for name in ("TOKEN_KEYS", "GRAPH_CLIENT_SECRET"):
        kind, parts = found[name]
        assert kind == "str" and parts[0] == "@Microsoft.KeyVault(SecretUri=", name
        assert parts[1][0] == "member" and parts[1][1][1][1] == "keyVault", name


def _code(path: Path) -> str:
    """A template's text without comments and @description(...) decorators: what runs."""
    text = re.sub(r"(?m)(^|\s)//.*$", "", path.read_text())  # not the // of https://
    return re.sub(r"(?ms)^\s*@description\((?:'[^'\n]*'|'{3}.*?'{3})\)\s*$", "", text)


# Hosts that differ between Azure's clouds (the Bicep linter's no-hardcoded-env-urls list, plus
# the App Service, Front Door, sign-in and Microsoft Graph hosts of each cloud).
CLOUD_HOSTS = re.compile(
    r"(?i)[a-z0-9.-]*\b(?:windows\.net|azure\.com|azure\.net|azure\.us|azure\.cn|"
    r"azurewebsites\.net|azurewebsites\.us|chinacloudsites\.cn|azurefd\.net|azurefd\.us|"
    r"microsoftonline\.com|microsoftonline\.us|microsoftonline\.cn|chinacloudapi\.cn|"
    r"usgovcloudapi\.net|microsoft\.com|microsoft\.us|loganalytics\.io|trafficmanager\.net|"
    r"azuredatalakestore\.net|azuredatalakeanalytics\.net)\b"
)


def test_no_template_hard_codes_a_cloud_host() -> None:
    """A national cloud has its own hosts: they come from environment(), a resource's
    properties, or a parameter the admin sets, never from the template's text."""
    for path in BICEP_FILES:
        hosts = CLOUD_HOSTS.findall(_code(path))
        assert not hosts, f"{path.relative_to(INFRA)} hard-codes {sorted(set(hosts))}"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    hosts = CLOUD_HOSTS.findall(json.dumps(parameters))  # not the $schema, the same everywhere
    assert not hosts, f"main.parameters.json hard-codes {sorted(set(hosts))}"


def test_host_check_finds_a_hard_coded_host(tmp_path: Path) -> None:
    sample = tmp_path / "sample.bicep"
    sample.write_text(
        "// login.microsoftonline.com in a comment is fine\n"
        "@description('so is graph.microsoft.com here')\n"
        "param x string = 'https://login.microsoftonline.com/'\n"
        "var y = '${x}.azurewebsites.net'\n"
    )
    assert CLOUD_HOSTS.findall(_code(sample)) == ["login.microsoftonline.com", ".azurewebsites.net"]


def _role_assignments() -> list[tuple[str, str, dict[str, bicep.Node]]]:
    found = []
    for path in BICEP_FILES:
        for name, resource in bicep.parse(path).resources.items():
            if resource.target.startswith("Microsoft.Authorization/roleAssignments@"):
                found.append((path.name, name, _object(_object(resource.body)["properties"])))
    return found


def test_no_template_hard_codes_a_principal_type() -> None:
    """ARM refuses an assignment whose principalType is not the principal's
    (UnmatchedPrincipalType). The one fixed type allowed is the managed identity's, which is a
    service principal by definition: the principalId must then come from that identity."""
    main = bicep.parse(INFRA / "main.bicep")
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE}"
    assignments = _role_assignments()
    assert assignments
    for file, name, properties in assignments:
        module = next(m for m in main.modules.values() if m.target.endswith(f"/{file}"))
        passed = _object(_object(module.body)["params"])
        principal_type = properties["principalType"]
        principal_id = properties["principalId"]
        assert principal_id[0] == "ref", f"{file} {name}: principalId is not a parameter"
        if principal_type[0] == "ref":
            assert passed[principal_type[1]] == ("ref", "principalType"), f"{file} {name}"
            assert passed[principal_id[1]] == ("ref", "principalId"), f"{file} {name}"
            continue
        assert principal_type == ("str", ["ServicePrincipal"]), f"{file} {name}: {principal_type}"
        source = passed[principal_id[1]]
        assert source == (
            "member",
            ("member", ("ref", "identity"), "outputs", False),
            "principalId",
            False,
        ), f"{file} {name}: a fixed ServicePrincipal type for a principal that is not the identity"
        assert "managed-identity/user-assigned-identity" in main.modules["identity"].target


def _refs(node: Any, template: bicep.Template, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every name an expression reads, through the template's variables."""
    if not isinstance(node, (tuple, list)):
        return set()
    if isinstance(node, tuple) and node and node[0] == "ref":
        name = node[1]
        if name in template.variables and name not in seen:
            return {name} | _refs(template.variables[name], template, seen | {name})
        return {name}
    return set().union(*(_refs(child, template, seen) for child in node))


def test_no_output_reads_a_secure_parameter() -> None:
    """The linter's outputs-should-not-contain-secrets: an output that only tests a secret
    (`empty(secret) ? ...`) still puts it in the deployment's history as a dependency."""
    for path in BICEP_FILES:
        template = bicep.parse(path)
        secure = {name for name, param in template.params.items() if param.secure}
        for name, (_, expression) in template.outputs.items():
            read = _refs(expression, template) & secure
            assert not read, f"{path.name} output {name} reads {read}"


def test_app_settings_are_written_whole_not_merged() -> None:
    """AVM's site module merges the settings already on the app into new ones, so a setting the
    template no longer sets stays for good. One sites/config resource writes the whole set."""
    _, _, resource = _app_settings_resource()
    assert _object(resource.body)["name"] == ("str", ["appsettings"])
    for path in BICEP_FILES:
        for name, declared in bicep.parse(path).modules.items():
            if "avm/res/web/site:" in declared.target:
                params = _object(_object(declared.body)["params"])
                assert "appSettingsKeyValuePairs" not in params, f"{path.name} {name}"


def test_registry_modules_are_pinned() -> None:
    for path in BICEP_FILES:
        modules = _parsed(str(path.relative_to(INFRA))).get("modules", {})
        for name, module in modules.items():
            if module["type"] == "local":
                assert (path.parent / module["detail"]["path"]).is_file(), name
                continue
            detail = module["detail"]
            assert detail["path"].startswith("avm/res/"), f"{name}: not an AVM module"
            assert re.fullmatch(r"\d+\.\d+\.\d+", detail["tag"]), f"{name}: not pinned"


def _comment_for(lines: list[str], number: int) -> str:
    """The comment on a line, with the block of // lines right above it."""
    block = []
    above = number - 1
    while above >= 0 and lines[above].lstrip().startswith("//"):
        block.append(lines[above])
        above -= 1
    inline = lines[number].split("//", 1)[1] if "//" in lines[number] else ""
    return " ".join([*reversed(block), inline])


def test_every_role_id_has_a_comment_naming_the_role() -> None:
    found = 0
    for path in BICEP_FILES:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            for guid in _GUID.findall(line.split("//")[0]):
                where = f"{path.name}:{number + 1}"
                assert guid in ROLE_NAMES, f"{where}: unknown role id {guid}"
                role = ROLE_NAMES[guid]
                assert role in _comment_for(lines, number), f"{where}: say it is {role}"
                found += 1
    assert found, "no role ids found"


def test_parameters_file_maps_real_parameters() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = _parsed("main.bicep")["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    # Every parameter without a default is mapped, tokenSigningKey too: azd still generates it
    # while its variable is unset, and `azd pipeline config` refuses to set up CI for a
    # generated value that no variable maps (it copies it to that variable).
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(parameters), required - set(parameters)
