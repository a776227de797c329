"""What `azd provision` does with infra/main.parameters.json, for tests (azd 1.23 and later).

azd reads each parameter of the file and substitutes the azd environment's values for the
`${NAME}` (or `${NAME=default}`) references in it:

- a parameter whose template type is a string, int or bool: its JSON *text*
  (`{"value":"${TOKEN_KEYS}"}`) gets the value pasted in **unescaped**, then is parsed again. A
  value with a double quote or a backslash makes that text invalid JSON, and provisioning stops
  before anything is deployed;
- an object or array parameter whose value is one "${NAME}" string: the substituted text is
  parsed as JSON on its own;
- `${AZURE_PRINCIPAL_ID}` and `${AZURE_PRINCIPAL_TYPE}` are not read from the environment but
  from the login: the signed-in user, or the service principal or workload identity of a
  pipeline (`ServicePrincipal`);
- a parameter that comes out empty because its variable is unset is left out (the template's
  default applies); strings "1" and "true" become numbers and booleans for int and bool
  parameters; a required parameter without a value is an error under --no-prompt (CI), and a
  parameter with azd `generate` metadata is generated once and kept in the environment.

`azd pipeline config` copies the values to the CI system JSON-escaped (`"` becomes `\\"`), so a
value that only works unescaped locally breaks in CI: `pipeline_escape` does the same.

The source is Azure/azure-dev, cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go
(loadParameters, evalParamEnvSubst, armParameterFileValue, ensureParameters) and
cli/azd/pkg/pipeline/pipeline.go (escapeValuesForPipeline).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.bicep import Template

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?=)([^}]*))?\}")
_GENERATED = string.ascii_letters + string.digits


class ProvisionError(Exception):
    """`azd provision` stops here, before any deployment starts."""


@dataclass(frozen=True)
class Login:
    """Who runs azd: azd fills AZURE_PRINCIPAL_ID and AZURE_PRINCIPAL_TYPE from it."""

    principal_id: str
    principal_type: str  # "User" or "ServicePrincipal", as azd reports it


USER = Login("33333333-3333-3333-3333-333333333333", "User")
PIPELINE = Login("44444444-4444-4444-4444-444444444444", "ServicePrincipal")


def _substitute(text: str, env: Mapping[str, str], login: Login) -> tuple[str, bool]:
    """The text with every reference replaced, and whether a referenced variable was unset."""
    unset = False
    if "$" in _REFERENCE.sub("", text):
        raise NotImplementedError(f"a reference this emulation does not know in {text!r}")

    def value(match: re.Match[str]) -> str:
        nonlocal unset
        name, operator, default = match.groups()
        if name == "AZURE_PRINCIPAL_ID":
            return login.principal_id
        if name == "AZURE_PRINCIPAL_TYPE":
            return login.principal_type
        if name not in env:
            unset = True
            return default if operator else ""
        if operator == ":=" and env[name] == "":
            return default
        return env[name]

    return _REFERENCE.sub(value, text), unset


def _from_file_value(kind: str, value: Any, default: Any) -> Any:
    """armParameterFileValue: strings converted for int and bool, empty strings dropped."""
    if not isinstance(value, str):
        return value
    if kind == "bool" and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if kind == "int" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "string":
        if value != "" or (isinstance(default, str) and value != default):
            return value
        return None
    return value


def load_parameters(
    parameters_file: Path,
    template: Template,
    env: Mapping[str, str],
    login: Login,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameter values azd passes to the deployment of `template`, or ProvisionError.

    `config` stands for .azure/<env>/config.json's infra.parameters: a generated value is kept
    there (and reused) the way azd does; pass the same dict to a later run."""
    config = {} if config is None else config
    entries = json.loads(parameters_file.read_text())["parameters"]
    values: dict[str, Any] = {}
    for name, entry in entries.items():
        param = template.params[name]
        if param.type in ("object", "array") and isinstance(entry.get("value"), str):
            replaced, unset = _substitute(entry["value"], env, login)
            if replaced == "" and unset:
                continue
            try:
                values[name] = json.loads(replaced)
            except json.JSONDecodeError as error:
                raise ProvisionError(f"parameter {name}: {replaced!r} is not valid JSON") from error
            continue
        text = json.dumps(entry, separators=(",", ":"))
        replaced, unset = _substitute(text, env, login)
        try:
            resolved = json.loads(replaced)
        except json.JSONDecodeError as error:
            raise ProvisionError(
                f"error unmarshalling Bicep template parameters ({name}): {error}"
            ) from error
        value = resolved.get("value")
        if value is None or (value == "" and unset):
            continue
        default = None
        if param.default is not None and param.default[0] == "lit":
            default = param.default[1]
        converted = _from_file_value(param.type, value, default)
        if converted is not None:
            values[name] = converted

    for name, param in template.params.items():
        if name in values or param.default is not None:
            continue
        if name in config:
            values[name] = config[name]
        elif _generated(param):
            config[name] = "".join(secrets.choice(_GENERATED) for _ in range(48))
            values[name] = config[name]
        else:
            raise ProvisionError(f"missing required inputs: {name} (no prompt in CI)")
    return values


def _generated(param: Any) -> bool:
    for node in param.decorators.get("metadata", []):
        text = json.dumps(node)
        if '"azd"' in text and '"generate"' in text:
            return True
    return False


def pipeline_escape(env: Mapping[str, str]) -> dict[str, str]:
    """The values as `azd pipeline config` stores them in GitHub or Azure DevOps: JSON-escaped
    without the outer quotes (escapeValuesForPipeline)."""
    return {name: json.dumps(value)[1:-1] for name, value in env.items()}
