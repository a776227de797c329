"""Entity queries without the SDK's model deserializer.

`TableClient.query_entities` spends most of its CPU in the generated msrest-style
deserializer (azure/data/tables/_generated/_serialization.py), which walks every property of
every row as a generic `{object}` only to hand back the values the JSON already held. `query`
makes the generated operation's own pipeline call with the same request, takes the JSON that
azure-core's ContentDecodePolicy parsed in that pipeline (the object the generated
deserializer starts from), and converts each row with the SDK's `_convert_to_entity`; it pages
and raises as `query_entities` does.

Pinned SDK internals (azure-data-tables 12.7, azure-core 1.41); tests/core/test_table_queries.py
compares the request, the rows and the errors with `query_entities`, so an upgrade that changes
them fails there:
- `table._client._client._pipeline.run(request, stream=False, use_location=...)` after
  `format_url(..., url=table._client._config.url)`: what `query_entities` of
  azure/data/tables/_generated/aio/operations/_operations.py does (so authentication, retries,
  x-ms-version and the secondary-location handling are the SDK's), with the URL, query and
  headers of `build_table_query_entities_request`;
- the pipeline context's `"deserialized_data"` (ContentDecodePolicy.CONTEXT_NAME) and
  `"location_mode"`, which azure/data/tables/aio/_models.py's `TableEntityPropertiesPaged`
  reads (the latter through `_deserialize._return_context_and_deserialized`);
- `azure.data.tables._serialize._parameter_filter_substitution`,
  `azure.data.tables._deserialize._convert_to_entity` and
  `azure.data.tables._error._process_table_error`: the filter, the entities, the exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.pipeline.policies import ContentDecodePolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.data.tables import TableEntity, _deserialize, _error, _serialize
from azure.data.tables.aio import TableClient

# The SDK's own helpers, untyped (or typed too narrowly) there.
_parameter_filter_substitution: Callable[..., str] = _serialize._parameter_filter_substitution
_convert_to_entity: Callable[[Mapping[str, Any]], TableEntity] = _deserialize._convert_to_entity
_process_table_error: Callable[[HttpResponseError], NoReturn] = _error._process_table_error

# The generated operation's error map, applied before `_process_table_error` as there.
_ERROR_MAP: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}
_NEXT_PARTITION_KEY = "x-ms-continuation-NextPartitionKey"
_NEXT_ROW_KEY = "x-ms-continuation-NextRowKey"


async def query(
    table: TableClient,
    query_filter: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    select: str | list[str] | None = None,
    results_per_page: int | None = None,
    **kwargs: Any,
) -> AsyncIterator[TableEntity]:
    """The entities `table.query_entities` would yield for these arguments, page after page;
    `kwargs` go to the pipeline of every page, as `query_entities`' do (raw_request_hook...)."""
    fixed: dict[str, str] = {}
    if results_per_page is not None:
        fixed["$top"] = str(int(results_per_page))
    if select:
        fixed["$select"] = quote(select if isinstance(select, str) else ",".join(select), safe="")
    fixed["$filter"] = quote(_parameter_filter_substitution(parameters, query_filter), safe="")
    client = table._client
    path = f"/{quote(table.table_name, safe='')}()"
    headers = {
        "x-ms-version": client._config.version,
        "DataServiceVersion": "3.0",
        "Accept": "application/json;odata=minimalmetadata",
    }
    continuation: dict[str, str] = {}
    location = None  # the next page is asked where the last one was answered, as in the SDK
    while True:
        request = HttpRequest("GET", path, params={**fixed, **continuation}, headers=headers)
        request.url = client._client.format_url(request.url, url=client._config.url)
        answer = await client._client._pipeline.run(
            request, stream=False, use_location=location, **kwargs
        )
        response = answer.http_response
        if response.status_code != 200:
            _raise(response)
        location = answer.context.get("location_mode")
        for row in answer.context[ContentDecodePolicy.CONTEXT_NAME]["value"]:
            yield _convert_to_entity(row)
        next_partition_key = response.headers.get(_NEXT_PARTITION_KEY)
        next_row_key = response.headers.get(_NEXT_ROW_KEY)
        if not next_partition_key and not next_row_key:
            return
        continuation = {}
        if next_partition_key is not None:
            continuation["NextPartitionKey"] = quote(next_partition_key, safe="")
        if next_row_key is not None:
            continuation["NextRowKey"] = quote(next_row_key, safe="")


def _raise(response: AsyncHttpResponse) -> NoReturn:
    """Raise what `query_entities` raises for this answer: the generated operation's error,
    decoded by `_process_table_error` as `TableEntityPropertiesPaged` does."""
    try:
        map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
        raise HttpResponseError(response=response)
    except HttpResponseError as error:
        _process_table_error(error)
