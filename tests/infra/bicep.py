"""Evaluates the Bicep our templates are written in, for tests.

No Bicep compiler runs here (none is packaged for PyPI or npm without downloading a binary at
run time). tests/infra/bicep_syntax.py reads the templates; this module evaluates them the way
ARM does for the functions they call, so that a test can ask "with these parameters, what app
settings, Key Vault secrets and role assignments come out, or does the deployment stop?".
Values known only once Azure has created something (a module's or resource's runtime
properties) evaluate to `Unknown`; a function or construct it does not know is a `BicepError`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.bicep_syntax import BicepError, Declared, Node, Param, Template, parse

__all__ = ["BicepError", "Declared", "Node", "Param", "Template", "parse"]


class DeploymentStopped(Exception):
    """ARM refuses a parameter value: the deployment stops before the module is deployed."""


class NotDeployed(Exception):
    """An output of a module or resource whose condition is false was read."""


@dataclass(frozen=True)
class Unknown:
    """A value Azure only knows once the resource exists, named by where it comes from."""

    label: str

    def __str__(self) -> str:
        return f"<{self.label}>"


# What ARM's environment() returns in each cloud (the parts the templates read).
CLOUDS: dict[str, dict[str, Any]] = {
    "AzureCloud": {
        "name": "AzureCloud",
        "authentication": {"loginEndpoint": "https://login.microsoftonline.com/"},
    },
    "AzureUSGovernment": {
        "name": "AzureUSGovernment",
        "authentication": {"loginEndpoint": "https://login.microsoftonline.us/"},
    },
    "AzureChinaCloud": {
        "name": "AzureChinaCloud",
        "authentication": {"loginEndpoint": "https://login.chinacloudapi.cn/"},
    },
}


@dataclass(frozen=True)
class Context:
    """Where the deployment runs: the cloud, the tenant and subscription of the login."""

    cloud: str = "AzureCloud"
    tenant_id: str = "11111111-1111-1111-1111-111111111111"
    subscription_id: str = "22222222-2222-2222-2222-222222222222"
    location: str = "westeurope"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # ARM's string() of a bool
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _uri(base: str, relative: str) -> str:
    """ARM's uri(): keeps the base up to its last slash (all of it when it ends with one)."""
    rest = base.split("//", 1)[1] if "//" in base else base
    if base.endswith("/") or "/" not in rest:
        joined = base if base.endswith("/") else base + "/"
        return joined + relative.lstrip("/")
    return base[: base.rindex("/") + 1] + relative


def _unique_string(*parts: Any) -> str:
    digest = hashlib.sha256("|".join(map(_text, parts)).encode()).hexdigest()
    return digest[:13]


def _union(*values: Any) -> Any:
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for value in values:
            merged.update(value)
        return merged
    if all(isinstance(v, list) for v in values):
        return list(dict.fromkeys(item for value in values for item in value))
    raise BicepError(f"union() of {values!r}")


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return _text(item) in container
    if isinstance(container, dict):
        return str(item).lower() in (k.lower() for k in container)
    return item in container


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "concat": lambda *a: (
        "".join(map(_text, a)) if isinstance(a[0], str) else [x for part in a for x in part]
    ),
    "contains": _contains,
    "empty": lambda v: v is None or len(v) == 0,
    "endsWith": lambda s, v: s.lower().endswith(v.lower()),
    "first": lambda v: v[0],
    "join": lambda items, delimiter: delimiter.join(map(_text, items)),
    "last": lambda v: v[-1],
    "length": len,
    "replace": lambda s, old, new: s.replace(old, new),
    "split": lambda s, delimiter: s.split(delimiter),
    "startsWith": lambda s, v: s.lower().startswith(v.lower()),
    "string": _text,
    "take": lambda v, n: v[:n],
    "toLower": lambda s: s.lower(),
    "trim": lambda s: s.strip(),
    "union": _union,
    "uniqueString": _unique_string,
    "uri": _uri,
    "guid": lambda *a: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(_text, a)))),
    "subscriptionResourceId": lambda *a: "/providers/" + "/".join(map(_text, a)),
}


@dataclass(frozen=True)
class _Symbol:
    """A resource or module declared in a template, as an expression refers to it."""

    instance: Instance
    name: str
    kind: str  # resource, module, outputs


class Instance:
    """One template with its parameter values: a deployment of main.bicep, or of a module."""

    def __init__(
        self, template: Template, params: Mapping[str, Any], context: Context, path: str
    ) -> None:
        self.template = template
        self.context = context
        self.path = path
        unknown = set(params) - set(template.params)
        if unknown:
            raise BicepError(f"{path}: no such parameters {sorted(unknown)}")
        self.params: dict[str, Any] = {}
        for name, param in template.params.items():
            if name in params:
                self.params[name] = params[name]
            elif param.default is not None:
                self.params[name] = self.eval(param.default)
            else:
                raise DeploymentStopped(f"{path}: the parameter {name} has no value")
            self._validate(param, self.params[name])
        self._vars: dict[str, Any] = {}
        self._modules: dict[str, Instance | None] = {}

    def _validate(self, param: Param, value: Any) -> None:
        """ARM's checks of a parameter value, which stop the deployment before it starts."""
        where = f"{self.path}: the value for the parameter {param.name}"
        checks = {name: [self.eval(a) for a in args] for name, args in param.decorators.items()}
        if isinstance(value, Unknown):
            return
        types = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
        wanted = types.get(param.type.rstrip("?"))
        if wanted is None:
            raise BicepError(f"{where}: type {param.type} is not checked here")
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise DeploymentStopped(f"{where} is not of type {param.type}: {value!r}")
        value = self.params[param.name]  # Any again, past isinstance
        if "allowed" in checks and value not in checks["allowed"][0]:
            raise DeploymentStopped(f"{where} is not one of the allowed values: {value!r}")
        if "minLength" in checks and len(value) < checks["minLength"][0]:
            raise DeploymentStopped(f"{where} is shorter than {checks['minLength'][0]}")
        if "maxLength" in checks and len(value) > checks["maxLength"][0]:
            raise DeploymentStopped(f"{where} is longer than {checks['maxLength'][0]}")
        if "minValue" in checks and value < checks["minValue"][0]:
            raise DeploymentStopped(f"{where} is under {checks['minValue'][0]}")
        if "maxValue" in checks and value > checks["maxValue"][0]:
            raise DeploymentStopped(f"{where} is over {checks['maxValue'][0]}")

    # -- what tests ask
    def var(self, name: str) -> Any:
        if name not in self._vars:
            self._vars[name] = self.eval(self.template.variables[name])
        return self._vars[name]

    def output(self, name: str) -> Any:
        return self.eval(self.template.outputs[name][1])

    def deployed(self, name: str) -> bool:
        """Whether a resource or module is deployed (its `if` condition, when it has one)."""
        declared = self.template.resources.get(name) or self.template.modules[name]
        return declared.condition is None or self._bool(self.eval(declared.condition))

    def body(self, name: str) -> dict[str, Any]:
        """The evaluated body of a deployed resource or module (its properties, params...)."""
        declared = self.template.resources.get(name) or self.template.modules[name]
        if declared.loop:
            raise BicepError(f"{self.path}.{name}: a loop is not evaluated")
        if not self.deployed(name):
            raise NotDeployed(f"{self.path}.{name}")
        body: dict[str, Any] = self.eval(declared.body)
        return body

    def module(self, name: str) -> Instance | None:
        """The deployment of a local module (None for a registry module): its parameters are
        checked as ARM checks them, which may stop the deployment."""
        if name not in self._modules:
            declared = self.template.modules[name]
            params = self.body(name).get("params", {})
            if declared.target.startswith("br/") or declared.target.startswith("br:"):
                self._modules[name] = None
            else:
                child = parse((self.template.path.parent / declared.target).resolve())
                path = f"{self.path}.{name}"
                self._modules[name] = Instance(child, params, self.context, path)
        return self._modules[name]

    def instances(self) -> Iterator[Instance]:
        """This deployment and every local module deployed under it."""
        yield self
        for name in self.template.modules:
            if self.deployed(name) and (child := self.module(name)) is not None:
                yield from child.instances()

    # -- evaluation
    def _bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise BicepError(f"{self.path}: a condition evaluated to {value!r}")
        return value

    def eval(self, node: Node, scope: Mapping[str, Any] | None = None) -> Any:
        scope = scope or {}
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "str":
            return "".join(p if isinstance(p, str) else _text(self.eval(p, scope)) for p in node[1])
        if kind == "array":
            return [self.eval(item, scope) for item in node[1]]
        if kind == "object":
            return {self.eval(k, scope): self.eval(v, scope) for k, v in node[1]}
        if kind == "ref":
            return self._ref(node[1], scope)
        if kind == "ternary":
            chosen = node[2] if self._bool(self.eval(node[1], scope)) else node[3]
            return self.eval(chosen, scope)
        if kind == "unary":
            value = self.eval(node[2], scope)
            return not self._bool(value) if node[1] == "!" else -value
        if kind == "binary":
            return self._binary(node[1], node[2], node[3], scope)
        if kind == "member":
            return self._member(self.eval(node[1], scope), node[2], node[3])
        if kind == "index":
            return self._member(self.eval(node[1], scope), self.eval(node[2], scope), False)
        if kind == "call":
            return self._call(node[1], node[2], scope)
        if kind == "for":
            names, iterable, body = node[1], node[2], node[3]
            items = self.eval(iterable, scope)
            return [
                self.eval(body, {**scope, **dict(zip(names, (item, index), strict=False))})
                for index, item in enumerate(items)
            ]
        raise BicepError(f"{self.path}: cannot evaluate {kind}")

    def _ref(self, name: str, scope: Mapping[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if name in self.params:
            return self.params[name]
        if name in self.template.variables:
            return self.var(name)
        if name in self.template.resources:
            return _Symbol(self, name, "resource")
        if name in self.template.modules:
            return _Symbol(self, name, "module")
        raise BicepError(f"{self.path}: unknown name {name}")

    def _binary(self, op: str, left: Node, right: Node, scope: Mapping[str, Any]) -> Any:
        a = self.eval(left, scope)
        if op == "&&":
            return self._bool(a) and self._bool(self.eval(right, scope))
        if op == "||":
            return self._bool(a) or self._bool(self.eval(right, scope))
        if op == "??":
            return a if a is not None else self.eval(right, scope)
        b = self.eval(right, scope)
        if isinstance(a, Unknown) or isinstance(b, Unknown):
            raise BicepError(f"{self.path}: {op} on a value only Azure knows ({a}, {b})")
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "==": lambda x, y: x == y,
            "!=": lambda x, y: x != y,
            "=~": lambda x, y: str(x).lower() == str(y).lower(),
            "!~": lambda x, y: str(x).lower() != str(y).lower(),
            "<": lambda x, y: x < y,
            "<=": lambda x, y: x <= y,
            ">": lambda x, y: x > y,
            ">=": lambda x, y: x >= y,
            "+": lambda x, y: x + y,
            "-": lambda x, y: x - y,
            "*": lambda x, y: x * y,
            "/": lambda x, y: x // y,
            "%": lambda x, y: x % y,
        }
        return operations[op](a, b)

    def _member(self, value: Any, name: Any, safe: bool) -> Any:
        if isinstance(value, Unknown):
            return Unknown(f"{value.label}.{name}")
        if isinstance(value, _Symbol):
            instance = value.instance
            if value.kind == "module" and name == "outputs":
                return _Symbol(instance, value.name, "outputs")
            if not instance.deployed(value.name):
                raise NotDeployed(f"{instance.path}.{value.name}.{name}")
            if value.kind == "outputs":
                child = instance.module(value.name)
                if child is None:
                    return Unknown(f"{instance.path}.{value.name}.outputs.{name}")
                return child.output(name)
            return Unknown(f"{instance.path}.{value.name}.{name}")
        if isinstance(value, dict):
            if name in value:
                return value[name]
            if safe:
                return None
            raise BicepError(f"no property {name!r} in {sorted(value)}")
        if isinstance(value, list):
            return value[name]
        raise BicepError(f"property {name!r} of {value!r}")

    def _call(self, name: str, args: list[Node], scope: Mapping[str, Any]) -> Any:
        context = self.context
        if name == "environment":
            return CLOUDS[context.cloud]
        if name == "tenant":
            return {"tenantId": context.tenant_id}
        if name == "subscription":
            return {
                "id": f"/subscriptions/{context.subscription_id}",
                "subscriptionId": context.subscription_id,
                "tenantId": context.tenant_id,
            }
        if name == "resourceGroup":
            return {"location": context.location, "name": "rg", "id": f"{self.path}/rg"}
        if name == "filter":
            items = self.eval(args[0], scope)
            kind, names, body = args[1]
            assert kind == "lambda" and len(names) == 1
            return [
                item for item in items if self._bool(self.eval(body, {**scope, names[0]: item}))
            ]
        if name not in _FUNCTIONS:
            raise BicepError(f"{self.path}: function {name}() is not evaluated here")
        values = [self.eval(arg, scope) for arg in args]
        if any(isinstance(v, Unknown) for v in values) and name not in ("guid", "string"):
            return Unknown(f"{name}({', '.join(map(str, values))})")
        return _FUNCTIONS[name](*values)


def deploy(path: Path, params: Mapping[str, Any], context: Context | None = None) -> Instance:
    """main.bicep (or any template) deployed with these parameter values."""
    return Instance(parse(path), params, context or Context(), path.stem)
