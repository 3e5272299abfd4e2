"""From a `POST /api/classify` request to a ClassifyRequest, in two steps: `read_upload` (the body
read within its size and time limits, the form's fields checked) and `decode_upload` (the photo
decoded by the library's decoder, its type sniffed from the bytes, its pixel count and aspect ratio
checked from the header before any pixel is decoded). The app admits a request to the models only
between the two, so a slow upload never holds a place in the models' queue.

Nothing a client sends becomes a file path: the upload's file name is kept only as the label of its
predictions, the model names are looked up among the models being served."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from dataclasses import dataclass

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from topfive.decode.images import CorruptImage, ImageError, ImageTooLarge, NotAnImage, load_image
from topfive.serve.errors import ApiError, bad_field, not_an_image, too_large
from topfive.serve.settings import ServeSettings

MAX_LABEL = 120
FORM_LIMITS = {"max_files": 1, "max_fields": 8, "max_part_size": 64 * 1024}  # besides the photo: small fields


@dataclass(frozen=True)
class Upload:
    data: bytes  # the photo's file, as sent
    label: str  # what the predictions' "source" says
    models: tuple[str, ...]
    top_k: int


@dataclass(frozen=True)
class ClassifyRequest:
    image: Image.Image  # upright RGB, as the models see it before their own resizing
    label: str  # what the predictions' "source" says
    models: tuple[str, ...]
    top_k: int
    decode_seconds: float


def whole_number(text: str, most: int) -> int | None:
    """`text` as a number from 0 to `most` in ASCII digits (spaces around allowed), else None.
    str.isdigit() alone passes "²" and 5000-digit strings, on which int() raises."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(most)):
        return None
    number = int(text.lstrip("0") or "0")
    return number if number <= most else None


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused (413) as soon as it passes `limit`, whether or not it said its length,
    and (408) when it has not all arrived within `timeout_s`."""
    declared = request.headers.get("content-length", "").strip()
    if declared and not (declared.isascii() and declared.isdigit()):
        raise ApiError(400, "bad_request", "the Content-Length header is not a number")
    if declared and whole_number(declared, limit) is None:
        shown = f"{int(declared):,}" if len(declared) < 20 else f"a {len(declared)}-digit number of"
        raise too_large(f"the upload is {shown} bytes; this server takes at most {limit:,}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large(f"the upload is over {limit:,} bytes, the most this server takes")
    except TimeoutError:
        raise ApiError(408, "timeout", f"the upload did not arrive within {timeout_s:g} s "
                                       f"({len(body):,} bytes came)") from None
    except ClientDisconnect:
        raise ApiError(400, "disconnected", "the client went away before the upload was complete") from None
    return bytes(body)


async def parse_form(request: Request, body: bytes):
    """The multipart form in `body` (415 for a body of another type, 422 for a broken one)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        raise not_an_image("send the photo as multipart/form-data, in the field 'image'")
    sent = False

    async def replay():  # the body was read already, within its limit; the parser reads it from here
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(**FORM_LIMITS)
    except HTTPException as e:  # Starlette's answer to a malformed multipart body
        raise bad_field(f"the form could not be read: {e.detail}") from None


def label_of(filename: str | None) -> str:
    """The upload's name as shown beside its predictions: the last path part, without control
    characters, at most MAX_LABEL characters; "upload" when it has none."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:MAX_LABEL] or "upload"


def chosen_models(form, served: tuple[str, ...]) -> tuple[str, ...]:
    words = [w.strip() for value in form.getlist("models") if isinstance(value, str) for w in value.split(",")]
    words = [w for w in words if w]
    if not words:
        return served
    unknown = [w for w in words if w not in served]
    if unknown:
        raise bad_field(f"not served here: {', '.join(unknown[:5])[:300]}; models served: {', '.join(served)}")
    return tuple(dict.fromkeys(words))


def chosen_top_k(form, most: int) -> int:
    value = form.get("top_k", "5")
    number = whole_number(value, most) if isinstance(value, str) else None
    if not number:
        shown = repr(value[:20]) + ("..." if len(value) > 20 else "") if isinstance(value, str) else "a file"
        raise bad_field(f"top_k must be a whole number from 1 to {most}, not {shown}")
    return number


def decode_error(error: ImageError, label: str) -> ApiError:
    message = f"{label}: {error.reason}"
    if isinstance(error, ImageTooLarge):
        return too_large(message)
    if isinstance(error, NotAnImage):
        return not_an_image(message)
    if isinstance(error, CorruptImage):
        return ApiError(422, "corrupt_image", message)
    return bad_field(message)


async def read_upload(request: Request, served: tuple[str, ...], settings: ServeSettings) -> Upload:
    body = await read_body(request, settings.max_upload_bytes, settings.upload_timeout_s)
    form = await parse_form(request, body)
    del body  # the form holds the photo now (spooled to a temporary file beyond 1 MB)
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise bad_field("the form has no file in the field 'image'")
        models, top_k = chosen_models(form, served), chosen_top_k(form, settings.max_top_k)
        label = label_of(upload.filename)
        data = await upload.read()
    finally:
        await form.close()
    if not data:
        raise not_an_image(f"{label}: empty file (0 bytes)")
    return Upload(data, label, models, top_k)


async def decode_upload(upload: Upload, settings: ServeSettings) -> ClassifyRequest:
    start = time.perf_counter()
    try:  # the part's type and name are not trusted: the decoder sniffs the bytes
        image = await asyncio.to_thread(load_image, upload.data, settings.draft_size)
    except ImageError as e:
        raise decode_error(e, upload.label) from None
    return ClassifyRequest(image, upload.label, upload.models, upload.top_k, time.perf_counter() - start)
