"""The Bicep templates under infra/: each parses with the parser checkov uses, and they agree with
the code. Every setting the app reads is set in Azure and nothing set goes unread (checked against
the live Settings model), the containers and tables are the ones shared/core/storage.py names, and
one retention parameter drives both the lifecycle rule and RETENTION_DAYS.

The parsed Bicep (pycep's JSON) is walked, not the text: app settings are the keys of the object
literals that reach the Function App module's appSettingsKeyValuePairs, through union(),
conditionals, variables and the parameter main.bicep passes in. Comments are not in the parse
tree, so the one check about comments (role names beside role ids) reads the text.
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
from shared.core.storage import CONTAINERS, INTERACTIONS, TABLES

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# App settings the Functions host reads, not our code, so they are not fields of Settings.
HOST_SETTINGS = {
    # The host's own storage (timer schedule state and locks) through the managed identity,
    # instead of an AzureWebJobsStorage connection string with a key.
    "AzureWebJobsStorage__credential": "use a managed identity for the host's storage",
    "AzureWebJobsStorage__clientId": "which identity: the user-assigned one",
    # Blobs only: timers keep their state and locks in blobs and no trigger uses queues or
    # tables, so there is no __queueServiceUri or __tableServiceUri (nor a queue role).
    "AzureWebJobsStorage__blobServiceUri": "the host's blob endpoint",
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


def _setting_names(expr: Any, template: dict[str, Any], passed_in: dict[str, set[str]]) -> set[str]:
    """The names an app-settings expression can produce: the keys of every object literal in it,
    through union(), conditionals, the template's variables and parameters given in passed_in.
    pycep writes a variable reference as a bare string, like a string value; only keys are
    collected, so a string is followed only when it names a variable or a passed-in parameter."""
    if isinstance(expr, str):
        if expr in template.get("variables", {}):
            return _setting_names(template["variables"][expr]["value"], template, passed_in)
        return passed_in.get(expr, set())
    if not isinstance(expr, dict):
        return set()
    if "function" in expr:
        function = expr["function"]
        assert function["type"] == "union", f"unexpected {function['type']}() in app settings"
        args = function["parameters"].values()
        return set().union(*(_setting_names(a, template, passed_in) for a in args))
    if "operator" in expr:
        operator = expr["operator"]
        operands = operator["operands"]
        if operator["type"] == "conditional":
            branches = [operands["true_value"], operands["false_value"]]
        else:
            # pycep 0.5 binds ?: looser than Bicep does (`a == b ? x : y` comes out as
            # `a == (b ? x : y)`), so the objects may sit under another operator.
            branches = list(operands.values())
        return set().union(*(_setting_names(b, template, passed_in) for b in branches))
    return set(expr)


def _bicep_app_settings() -> set[str]:
    """Every app setting name the Function App gets: main.bicep's settings, passed to
    app/api.bicep as `appSettings`, merged there with the host's settings."""
    main = _parsed("main.bicep")
    from_main = _setting_names(_module_params(main, "api")["appSettings"], main, {})
    api = _parsed("app/api.bicep")
    site = _module_params(api, "api")["appSettingsKeyValuePairs"]
    return _setting_names(site, api, {"appSettings": from_main})


def _settings_read_by_the_app() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_parses(path: Path) -> None:
    template = _parsed(str(path.relative_to(INFRA)))
    assert template.get("resources") or template.get("modules"), "declares nothing"


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
    assert not missing, f"host settings missing from infra/app/api.bicep: {missing}"


def test_settings_left_out_on_purpose_exist_and_stay_out() -> None:
    stale = set(NOT_SET_IN_AZURE) - _settings_read_by_the_app()
    assert not stale, f"no longer fields of Settings, drop them from NOT_SET_IN_AZURE: {stale}"
    set_anyway = set(NOT_SET_IN_AZURE) & _bicep_app_settings()
    assert not set_anyway, f"set in Azure although listed as left out: {set_anyway}"


def test_containers_and_tables_are_the_ones_the_app_uses() -> None:
    variables = _parsed("app/storage.bicep")["variables"]
    assert set(variables["containerNames"]["value"]) == set(CONTAINERS)
    assert set(variables["tableNames"]["value"]) == set(TABLES)


def test_one_retention_parameter_drives_the_lifecycle_rule_and_the_app() -> None:
    main = _parsed("main.bicep")
    default = main["parameters"]["retentionDays"]["default"]
    assert default == Settings.model_fields["retention_days"].default
    settings = main["variables"]["appSettings"]["value"]["function"]["parameters"]["arg_1"]
    assert settings["RETENTION_DAYS"] == {
        "function": {"type": "string", "parameters": {"value_to_convert": "retentionDays"}}
    }
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
    main = _parsed("main.bicep")
    union = main["variables"]["appSettings"]["value"]["function"]["parameters"]
    rendered = json.dumps(union)
    for name in ("TOKEN_KEYS", "GRAPH_CLIENT_SECRET"):
        value = re.search(rf'"{name}": "([^"]*)"', rendered)
        assert value, f"{name} is not set from a string"
        assert value.group(1).startswith("@Microsoft.KeyVault(SecretUri=${keyVault.outputs.")


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
    required = {name for name, p in declared.items() if p.get("default") is None}
    # tokenSigningKey is generated by azd (its @metadata), so it must not be mapped.
    assert required - set(parameters) == {"tokenSigningKey"}
