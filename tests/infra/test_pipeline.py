"""Deploying from CI: the GitHub Actions workflow `azd pipeline config` uses, and the azure.yaml
lists that tell azd which values to copy to the pipeline. Every variable infra/main.parameters.json
reads must reach `azd provision` in the pipeline, secrets as secrets; otherwise a pipeline run
deploys with defaults (a fresh signing key, the managed identity...) that differ from the admin's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.infra.bicep import parse

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "azure-dev.yml"
AZURE_YAML = ROOT / "azure.yaml"
PARAMETERS = ROOT / "infra" / "main.parameters.json"

# Filled by azd itself from its login, never read from the environment.
FROM_THE_LOGIN = {"AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_TYPE"}
# Set in the pipeline by `azd pipeline config` whatever azure.yaml says.
SET_BY_AZD = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID"}


def mapped_variables() -> dict[str, bool]:
    """Each variable main.parameters.json reads, and whether its parameter is @secure()."""
    params = parse(ROOT / "infra" / "main.bicep").params
    variables: dict[str, bool] = {}
    for name, entry in json.loads(PARAMETERS.read_text())["parameters"].items():
        for variable in re.findall(r"\$\{(\w+)", json.dumps(entry)):
            variables[variable] = params[name].secure
    return {k: v for k, v in variables.items() if k not in FROM_THE_LOGIN}


def yaml_list(text: str, section: str, key: str) -> set[str]:
    """The items of `section: key:` in a small YAML file (no YAML parser in this venv)."""
    items: set[str] = set()
    where: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            where = [line.rstrip(":")]
        elif line.strip().startswith("- ") and where == [section, key]:
            items.add(line.strip()[2:])
        elif line.rstrip().endswith(":") and where[:1] == [section]:
            where = [section, line.strip().rstrip(":")]
    assert items, f"no {section}.{key} in azure.yaml"
    return items


def test_workflow_signs_in_with_a_federated_credential() -> None:
    text = WORKFLOW.read_text()
    assert re.search(r"(?m)^permissions:\n(?: +\S.*\n)*? +id-token: write$", text)
    assert '--federated-credential-provider "github"' in text
    assert "client-secret" not in text and "AZURE_CREDENTIALS" not in text
    assert "azd provision --no-prompt" in text
    assert "azd deploy --no-prompt" in text


def test_workflow_passes_every_parameter_variable() -> None:
    text = WORKFLOW.read_text()
    for variable, secure in mapped_variables().items():
        source = "secrets" if secure else "vars"
        assert re.search(rf"{variable}: \$\{{\{{ {source}\.{variable} \}}\}}", text), (
            f"the workflow does not pass {variable} from {source}"
        )
    for variable in re.findall(r"(\w+): \$\{\{ secrets\.", text):
        assert mapped_variables().get(variable), f"{variable} is a secret but its parameter is not"


def test_azure_yaml_tells_azd_pipeline_config_what_to_copy() -> None:
    text = AZURE_YAML.read_text()
    listed_variables = yaml_list(text, "pipeline", "variables")
    listed_secrets = yaml_list(text, "pipeline", "secrets")
    for variable, secure in mapped_variables().items():
        if variable in SET_BY_AZD or variable == "TOKEN_SIGNING_KEY":
            continue  # azd copies a generated value under its mapped variable by itself
        assert variable in (listed_secrets if secure else listed_variables), variable
    assert not listed_variables & listed_secrets


def test_azure_yaml_requires_an_azd_that_reads_these_templates_right() -> None:
    """`azd env config get` (the rotation guide) and AZURE_PRINCIPAL_TYPE need azd 1.23."""
    match = re.search(
        r"(?m)^requiredVersions:\n\s+azd: ['\"]?>= ?(\d+)\.(\d+)", AZURE_YAML.read_text()
    )
    assert match, "azure.yaml has no requiredVersions.azd"
    assert (int(match.group(1)), int(match.group(2))) >= (1, 23)
