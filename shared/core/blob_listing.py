"""Blob listings (names and metadata) without the SDK's model deserializer.

`ContainerClient.list_blobs(include=["metadata"])` spends most of its CPU turning each
`<Blob>` of the answer into generated models (azure/storage/blob/_generated/_utils/
serialization.py) and then a `BlobProperties` with some thirty fields. `names_and_metadata`
makes the generated operation's own pipeline call with the same request and reads just the
names and metadata from the XML that azure-core's ContentDecodePolicy parsed in that pipeline
(as the SDK's own `list_blob_names` does); it pages and raises as `list_blobs` does.

Pinned SDK internals (azure-storage-blob 12.31, azure-core 1.41); tests/core/test_blob_listing.py
compares the request, the listing and the errors with `list_blobs`, so an upgrade that changes
them fails there:
- `container._client._client._pipeline.run(request, stream=False, use_location=...)` after
  `format_url`, with `container._client._config.url` and `.version`: what
  `list_blob_flat_segment` of azure/storage/blob/_generated/aio/operations/
  _container_operations.py does (so authentication, retries, x-ms-version and the
  secondary-location handling are the SDK's), with the query and headers of
  `build_list_blob_flat_segment_request`;
- the pipeline context's `"deserialized_data"` (ContentDecodePolicy.CONTEXT_NAME) and the
  response's `location_mode`, which azure/storage/blob/_shared/response_handlers.py's
  `return_raw_deserialized` reads;
- how `get_blob_properties_from_generated_code` (azure/storage/blob/_deserialize.py) and the
  generated `BlobName`/`BlobMetadata` models read `<Name Encoded=...>` and `<Metadata>`;
- `azure.storage.blob._shared.response_handlers.process_storage_error`: the exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn
from urllib.parse import quote, unquote
from xml.etree.ElementTree import Element

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
from azure.storage.blob._shared import response_handlers
from azure.storage.blob.aio import ContainerClient

_process_storage_error: Callable[[HttpResponseError], NoReturn] = (
    response_handlers.process_storage_error
)

# The generated operation's error map, applied before `process_storage_error` as there.
_ERROR_MAP: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}
# The generated BlobMetadata model takes `Encrypted` for its own attribute, so a metadata
# entry of that name never reaches `BlobProperties.metadata`; nor does it here.
_NOT_METADATA = "Encrypted"


async def names_and_metadata(
    container: ContainerClient,
    prefix: str,
    *,
    results_per_page: int | None = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """(name, metadata) of each blob `container.list_blobs(name_starts_with=prefix,
    include=["metadata"])` would yield, in its order (metadata {} where the SDK gives None or
    {}); `kwargs` go to the pipeline of every page, as `list_blobs`' do (raw_request_hook...)."""
    client = container._client
    params = {"restype": "container", "comp": "list", "prefix": quote(prefix, safe="")}
    page_size = {} if results_per_page is None else {"maxresults": str(int(results_per_page))}
    headers = {"x-ms-version": client._config.version, "Accept": "application/xml"}
    marker: dict[str, str] = {}
    location = None  # the next page is asked where the last one was answered, as in the SDK
    while True:
        request = HttpRequest(
            "GET",
            client._config.url,
            params={**params, **marker, **page_size, "include": "metadata"},
            headers=headers,
        )
        request.url = client._client.format_url(request.url)
        answer = await client._client._pipeline.run(
            request, stream=False, use_location=location, **kwargs
        )
        response = answer.http_response
        if response.status_code != 200:
            _raise(response)
        location = getattr(response, "location_mode", None)
        listing: Element = answer.context[ContentDecodePolicy.CONTEXT_NAME]
        blobs = listing.find("Blobs")
        for blob in () if blobs is None else blobs.iterfind("Blob"):
            yield _name(blob), _metadata(blob)
        next_marker = listing.findtext("NextMarker")
        if not next_marker:
            return
        marker = {"marker": quote(next_marker, safe="")}


def _name(blob: Element) -> str:
    """The blob's name; the service URL-encodes names that XML cannot carry."""
    node = blob.find("Name")
    if node is None or not node.text:
        return ""
    if node.get("Encoded", "").lower() in ("true", "1"):
        return unquote(node.text)
    return node.text


def _metadata(blob: Element) -> dict[str, str]:
    node = blob.find("Metadata")
    if node is None:
        return {}
    return {entry.tag: entry.text or "" for entry in node if entry.tag != _NOT_METADATA}


def _raise(response: AsyncHttpResponse) -> NoReturn:
    """Raise what `list_blobs` raises for this answer: the generated operation's error,
    rewritten by `process_storage_error` as `BlobPropertiesPaged` does."""
    try:
        map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
        raise HttpResponseError(response=response)
    except HttpResponseError as error:
        _process_storage_error(error)
