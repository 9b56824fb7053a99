"""Reading the requests respx captured, and building the images the tests attach."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx

from xcourier.tools.models import FileEntry

TOKEN = "test-token"
BASE_URL = "https://api.x.com"

# Only the first bytes matter to the client: it sniffs the type from the magic numbers.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR png-body"
OTHER_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR another-png-body"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF jpeg-body"
GIF = b"GIF89a\x01\x00\x01\x00 gif-body"


def data_uri(content: bytes, mime_type: str = "image/png") -> str:
    return f"data:{mime_type};base64,{base64.b64encode(content).decode('ascii')}"


def image_entry(content: bytes = PNG, name: str = "photo.png", mime_type: str = "image/png") -> FileEntry:
    """A FILE_ENTRY as workflow tools send it, carrying the image as a data: URI."""
    return FileEntry(extension=name.rsplit(".", 1)[-1], mimeType=mime_type, name=name, url=data_uri(content, mime_type))


def json_body(request: httpx.Request) -> Any:
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.content)


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def multipart_parts(request: httpx.Request) -> dict[str, Part]:
    """The parts of a multipart/form-data request, by field name."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + request.read()
    )
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = Part(
            name=name,
            filename=part.get_filename(),
            content_type=part.get("content-type"),
            content=part.get_payload(decode=True),
        )
    return parts


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The plain (non-file) fields of a multipart request."""
    return {
        name: part.content.decode("utf-8") for name, part in multipart_parts(request).items() if part.filename is None
    }


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"]
