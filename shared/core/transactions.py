"""Entity-group transactions without the SDK's `email`-package multipart code.

`TableClient.submit_transaction` spends ~1.5 ms of CPU per operation building and parsing
the multipart/mixed $batch body with Python's `email` package (azure-core's
`_prepare_multipart`, `email.generator`, `email.feedparser`). `submit` sends the same
body, built as plain strings, through the same client pipeline, and reads the answer with a
split on the boundary; it raises what the SDK raises.

Pinned SDK internals (azure-data-tables 12.7, azure-core 1.41); tests/core/test_transactions.py
compares our body with the SDK's part by part, so an upgrade that changes them fails there:
- `table._client.send_request(request, stream=True)`: the generated client's pipeline
  (authentication, retries, x-ms-version, x-ms-date), as `_batch_send` in
  azure/data/tables/aio/_base_client_async.py uses it;
- `table.scheme`, `table._primary_hostname`, `table.api_version`, `table._client._config.version`
  and `table._cosmos_endpoint`: the URL and versions `submit_transaction` uses;
- `azure.data.tables._serialize._add_entity_properties`, `_prepare_key` and
  `_get_match_condition`, and `_generated._vendor.prep_if_match`: the entity, key and
  If-Match serialization of azure/data/tables/_table_batch.py;
- `azure.data.tables._error._decode_error` and `_validate_tablename_error`: the exceptions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote
from uuid import uuid4
from wsgiref.handlers import format_date_time

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.utils import CaseInsensitiveDict
from azure.data.tables import (
    RequestTooLargeError,
    TableEntity,
    TableTransactionError,
    UpdateMode,
    _error,
    _serialize,
)
from azure.data.tables._generated._vendor import prep_if_match
from azure.data.tables.aio import TableClient

# The SDK's own helpers, untyped there.
_add_entity_properties: Callable[[Any], dict[str, Any]] = _serialize._add_entity_properties
_prepare_key: Callable[[str], str] = _serialize._prepare_key
# What quote(..., safe="") leaves as it is: most keys are made of these alone.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_get_match_condition: Callable[..., MatchConditions] = _serialize._get_match_condition
_decode_error: Callable[..., HttpResponseError] = _error._decode_error
_validate_tablename_error: Callable[[HttpResponseError, str], None] = (
    _error._validate_tablename_error
)

MAX_OPERATIONS = 100  # the service's limit for one entity-group transaction
_JSON = "Accept: application/json\r\n"
_MINIMAL = "Accept: application/json;odata=minimalmetadata\r\n"
_TOO_LARGE = "The transaction request was too large"


async def submit(table: TableClient, operations: Sequence[tuple[Any, ...]], **kwargs: Any) -> None:
    """Commit `operations` (the tuples `submit_transaction` takes) as one transaction;
    `kwargs` go to the pipeline, as `submit_transaction`'s do (raw_request_hook, ...)."""
    if len(operations) > MAX_OPERATIONS:
        raise ValueError(f"A transaction holds at most {MAX_OPERATIONS} operations.")
    if not operations:
        return  # the SDK sends an empty batch and swallows the service's 400
    base = f"{table.scheme}://{table._primary_hostname}"
    stamp = format_date_time(time.time())
    # Each part as azure-core serializes the SDK's sub-request after StorageHeadersPolicy.
    versions = f"x-ms-version: {table._client._config.version}\r\nDataServiceVersion: 3.0\r\n"
    dates = f"x-ms-date: {stamp}\r\nDate: {stamp}\r\n\r\n"
    parts = []
    partition_key: str | None = None
    for index, operation in enumerate(operations):
        kind, entity = operation[0], operation[1]
        options: Mapping[str, Any] = operation[2] if len(operation) == 3 else {}
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise ValueError("PartitionKey and/or RowKey were not provided in entity")
        if partition_key is None:
            partition_key = entity["PartitionKey"]
        elif entity["PartitionKey"] != partition_key:
            raise ValueError("Partition Keys in the batch must all be the same.")
        method, path, headers, body = _request(table, kind, entity, options)
        length = (
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        )
        parts.append(
            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\n{method} {base}/{path} HTTP/1.1\r\n"
            f"{length}{versions}{headers}{dates}{body}"
        )
    changeset = f"changeset_{uuid4()}"
    batch = f"batch_{uuid4()}"
    content = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        f"--{changeset}\r\n"
        + f"\r\n--{changeset}\r\n".join(parts)
        + f"\r\n--{changeset}--\r\n\r\n--{batch}--\r\n"
    )
    request = HttpRequest(
        "POST",
        f"{base}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=content.encode(),
    )
    response = await table._client.send_request(request, stream=True, **kwargs)
    await response.read()
    _raise_for_errors(table.table_name, response)


def _request(
    table: TableClient, kind: Any, entity: Any, options: Mapping[str, Any]
) -> tuple[str, str, str, str]:
    """Method, path, the header lines from Accept on, and the JSON body of one operation, as the
    SDK's TableBatchOperations (azure/data/tables/_table_batch.py) builds them."""
    name = str(kind.lower())
    if name not in _OPTIONS:
        raise ValueError(f"Unrecognized operation: {kind}")
    if unknown := set(options) - _OPTIONS[name]:
        raise TypeError(f"Unsupported options for {name}: {sorted(unknown)}")
    if name == "create":
        return "POST", _quote(table.table_name), _MINIMAL, _dumps(entity)
    path = (
        f"{_quote(table.table_name)}(PartitionKey='"
        f"{_quote(_prepare_key(entity['PartitionKey']))}',"
        f"RowKey='{_quote(_prepare_key(entity['RowKey']))}')"
    )
    etag = options.get("etag")
    match_condition = options.get("match_condition")
    if name == "delete":
        if match_condition and not etag and isinstance(entity, TableEntity):
            etag = entity.metadata.get("etag")
        return "DELETE", path, _MINIMAL + _if_match(etag, match_condition), ""
    body = _dumps(entity)
    # Only "update" is conditional; unlike "delete", the SDK never takes the etag from a
    # TableEntity's metadata here (it looks after serializing the entity to a dict).
    headers = _JSON + (_if_match(etag, match_condition) if name == "update" else "")
    mode = options.get("mode", UpdateMode.MERGE)
    if mode == UpdateMode.REPLACE:
        return "PUT", path, headers, body
    if mode == UpdateMode.MERGE:
        if table._cosmos_endpoint:
            return "POST", path, headers + "X-HTTP-Method: MERGE\r\n", body
        return "PATCH", path, headers, body
    raise ValueError(f"Mode type '{mode}' is not supported.")


_OPTIONS = {
    "create": frozenset[str](),
    "upsert": frozenset({"mode"}),
    "update": frozenset({"mode", "etag", "match_condition"}),
    "delete": frozenset({"etag", "match_condition"}),
}


def _quote(text: str) -> str:
    """quote(text, safe=""), without its work for the usual key that needs none."""
    return text if _UNRESERVED.issuperset(text) else quote(text, safe="")


def _if_match(etag: str | None, match_condition: MatchConditions | None) -> str:
    """The If-Match header line, with the SDK's own checks of etag and condition."""
    condition = _get_match_condition(
        etag=etag, match_condition=match_condition or MatchConditions.Unconditionally
    )
    return f"If-Match: {prep_if_match(etag, condition)}\r\n"


def _dumps(entity: Any) -> str:
    # After _add_entity_properties every value is a JSON primitive, so the stdlib encoder
    # writes what azure-core's AzureJSONEncoder would (same separators, ensure_ascii).
    return json.dumps(_add_entity_properties(entity))


class _PartResponse:
    """One sub-response of the $batch answer: just what `_decode_error` and
    HttpResponseError read (status, reason, headers, text)."""

    def __init__(self, request: HttpRequest, raw: bytes) -> None:
        head, _, self._body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("utf-8").split("\r\n")
        code, _, self.reason = status_line.partition(" ")[2].partition(" ")
        self.status_code = int(code)
        self.headers = CaseInsensitiveDict()
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip()] = value.strip()
        self.content_type: str | None = self.headers.get("Content-Type")
        self.request = request

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode(encoding or "utf-8-sig")


def _parts(body: bytes, content_type: str) -> list[bytes]:
    """The application/http payloads of a multipart/mixed body, changesets flattened."""
    boundary = content_type.partition("boundary=")[2].split(";")[0].strip().strip('"')
    delimiter = b"--" + boundary.encode()
    found: list[bytes] = []
    # Before the first delimiter is the preamble, after the closing one ("--" + epilogue).
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        headers, _, payload = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        part_type = next(
            (
                line.partition(b":")[2].strip().decode()
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-type:")
            ),
            "",
        )
        if part_type.startswith("multipart/mixed"):
            found.extend(_parts(payload, part_type))
        else:
            found.append(payload)
    return found


def _raise_for_errors(table_name: str, response: AsyncHttpResponse) -> None:
    """Raise what `_batch_send` raises for this answer, or nothing when every part succeeded."""
    if response.status_code == 413:
        raise _decode_error(response, error_message=_TOO_LARGE, error_type=RequestTooLargeError)
    if response.status_code != 202:
        decoded = _decode_error(response)
        _validate_tablename_error(decoded, table_name)
        raise decoded
    for raw in _parts(response.content, response.headers.get("Content-Type", "")):
        status = int(raw[: raw.find(b"\r\n")].split(b" ", 2)[1])  # "HTTP/1.1 204 No Content"
        if 200 <= status < 300:
            continue
        if status == 413:
            raise _decode_error(response, error_message=_TOO_LARGE, error_type=RequestTooLargeError)
        part = _PartResponse(response.request, raw)
        decoded = _decode_error(response=part, error_type=TableTransactionError)
        _validate_tablename_error(decoded, table_name)
        raise decoded
