"""shared.core.blob_listing: the SDK's requests, names, metadata and errors, by comparison with
`list_blobs` on Azurite, and on an Azure stand-in for what Azurite never answers (encoded
names, encrypted metadata)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiohttp import web
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.core.blob_listing import names_and_metadata
from shared.core.services import Services
from tests.utils.azurite import ACCOUNT, KEY
from tests.utils.requests import Recorder

# Names the service must escape in a URL or in XML, and metadata of every shape.
BLOBS: dict[str, dict[str, str]] = {
    "b/plain": {"kind": "open", "index": "3"},
    "b/no-metadata": {},
    "b/empty value": {"kind": "", "at": "2024-05-06T07:08:09+00:00"},
    "b/grüße 'quoted' \"and\" <x> & y": {"ua": "Mozilla%2F5.0%20(x)"},
    "b/100% + sure?#=": {"ip": "203.0.113.0"},
    "b/Encrypted-named": {"Encrypted": "x", "kept": "y"},
    **{f"b/n{i:02}": {"index": str(i)} for i in range(13)},
    "c/other prefix": {"kind": "click"},
}


@pytest.fixture(scope="module")
async def container(services: Services) -> ContainerClient:
    container = services.store.blob_service.get_container_client(f"listing{uuid4().hex[:8]}")
    await container.create_container()
    await asyncio.gather(
        *(container.upload_blob(name, b"", metadata=meta) for name, meta in BLOBS.items())
    )
    return container


async def collected(listing: AsyncIterator[tuple[str, dict[str, str]]]) -> Any:
    """The listing, or what was raised (without the request id)."""
    try:
        return [item async for item in listing]
    except HttpResponseError as error:
        return type(error), error.error_code, error.status_code  # type: ignore[attr-defined]


async def sdk_listing(container: ContainerClient, prefix: str, **options: Any) -> Any:
    """What `list_blobs` gives of names and metadata. It gives None for `<Metadata/>` and for
    an empty value, where `names_and_metadata` gives {} and "" (its type is dict[str, str])."""

    async def pairs() -> AsyncIterator[tuple[str, dict[str, str]]]:
        blobs = container.list_blobs(name_starts_with=prefix, include=["metadata"], **options)
        async for blob in blobs:
            yield blob.name, {k: v or "" for k, v in (blob.metadata or {}).items()}

    return await collected(pairs())


async def both(container: ContainerClient, prefix: str, **options: Any) -> tuple[Any, Any]:
    sdk = await sdk_listing(container, prefix, **options)
    ours = await collected(names_and_metadata(container, prefix, **options))
    return sdk, ours


@pytest.mark.parametrize("page", [None, 1, 4])
async def test_the_listing_is_the_sdks(container: ContainerClient, page: int | None) -> None:
    sdk, ours = await both(container, "b/", results_per_page=page)
    assert ours == sdk
    assert len(ours) == len(BLOBS) - 1
    found = dict(ours)
    assert found["b/plain"] == BLOBS["b/plain"]
    assert found["b/empty value"] == BLOBS["b/empty value"]
    assert found["b/no-metadata"] == {}
    assert found["b/Encrypted-named"] == {"kept": "y"}  # as the SDK: its model takes the name


@pytest.mark.parametrize("prefix", ["b/grüße 'quoted' \"and\" <x> &", "b/100% + sure?", "b/n0"])
async def test_a_prefix_to_escape_narrows_as_in_the_sdk(
    container: ContainerClient, prefix: str
) -> None:
    sdk, ours = await both(container, prefix)
    assert ours == sdk
    assert ours and all(name.startswith(prefix) for name, _ in ours)


async def test_no_blobs_is_no_blobs(container: ContainerClient) -> None:
    sdk, ours = await both(container, "nothing/")
    assert ours == sdk == []


async def test_a_missing_container_raises_what_the_sdk_raises(services: Services) -> None:
    container = services.store.blob_service.get_container_client(f"missing{uuid4().hex[:8]}")
    sdk, ours = await both(container, "b/")
    assert ours == sdk
    assert issubclass(ours[0], ResourceNotFoundError) and ours[1] == "ContainerNotFound"


async def test_a_rejected_request_raises_what_the_sdk_raises(
    connection_string: str, container: ContainerClient
) -> None:
    wrong = re.sub(r"AccountKey=[^;]+", "AccountKey=" + "A" * 86 + "==", connection_string)
    service = BlobServiceClient.from_connection_string(wrong)
    async with service.get_container_client(container.container_name) as rejected:
        sdk, ours = await both(rejected, "b/")
    assert ours == sdk
    assert isinstance(ours, tuple) and ours[2] == 403


async def test_the_requests_are_the_sdks(container: ContainerClient) -> None:
    sdk, ours = Recorder(), Recorder()
    for prefix, page in (("b/grüße 'quoted' \"and\" <x> & y", None), ("b/", 4)):
        await sdk_listing(container, prefix, results_per_page=page, raw_request_hook=sdk)
        listing = names_and_metadata(
            container, prefix, results_per_page=page, raw_request_hook=ours
        )
        await collected(listing)
    assert len(ours.requests) == 1 + 5  # the pages of 4 follow markers
    assert ours.requests == sdk.requests


# Two pages as Azure writes them: names XML cannot carry are URL-encoded (Encoded="true"),
# client-side-encrypted metadata is flagged on <Metadata>, and an empty <Metadata/>.
STAND_IN_PAGES = {
    "": """<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="{endpoint}" ContainerName="c">
  <Prefix>e/</Prefix><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name Encoded="true">e%2Fbell%07%EF%BF%BF</Name><Properties><BlobType>BlockBlob</BlobType></Properties><Metadata><k>v</k></Metadata></Blob>
    <Blob><Name Encoded="false">e/100%25</Name><Properties><BlobType>BlockBlob</BlobType></Properties><Metadata Encrypted="true"><a>1</a><b /></Metadata></Blob>
  </Blobs>
  <NextMarker>2!e/next marker</NextMarker>
</EnumerationResults>""",
    "2!e/next marker": """<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="{endpoint}" ContainerName="c">
  <Prefix>e/</Prefix><Marker>2!e/next marker</Marker><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name>e/grüße &amp; &lt;x&gt;</Name><Properties><BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>
    <Blob><Name>e/no metadata</Name><Properties><BlobType>BlockBlob</BlobType></Properties></Blob>
  </Blobs>
  <NextMarker />
</EnumerationResults>""",
}


@pytest.fixture
async def stand_in() -> AsyncIterator[ContainerClient]:
    """A container client of an account whose blob service is a stand-in answering
    STAND_IN_PAGES."""

    async def listing(request: web.Request) -> web.Response:
        page = STAND_IN_PAGES[request.query.get("marker", "")]
        endpoint = f"http://{request.host}/{ACCOUNT}"
        return web.Response(
            body=page.replace("{endpoint}", endpoint).encode(), content_type="application/xml"
        )

    app = web.Application()
    app.router.add_get(f"/{ACCOUNT}/c", listing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/{ACCOUNT}"
    credential = {"account_name": ACCOUNT, "account_key": KEY}
    async with ContainerClient(url, "c", credential=credential) as container:
        yield container
    await runner.cleanup()


async def test_encoded_names_and_encrypted_metadata_are_read_as_by_the_sdk(
    stand_in: ContainerClient,
) -> None:
    sdk, ours = await both(stand_in, "e/")
    assert ours == sdk
    assert ours == [
        ("e/bell\x07\uffff", {"k": "v"}),
        ("e/100%25", {"a": "1", "b": ""}),
        ("e/grüße & <x>", {}),
        ("e/no metadata", {}),
    ]
