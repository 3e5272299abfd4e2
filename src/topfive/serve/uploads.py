"""From a `POST /api/classify` request to a ClassifyRequest: the body read within its size limit,
the form's fields checked, the photo decoded by the library's decoder (its type sniffed from the
bytes, its pixel count and aspect ratio checked from the header before any pixel is decoded).

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
class ClassifyRequest:
    image: Image.Image  # upright RGB, as the models see it before their own resizing
    label: str  # what the predictions' "source" says
    models: tuple[str, ...]
    top_k: int
    decode_seconds: float


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it passes `limit`, whether or not it said its length."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"the upload is {int(declared):,} bytes; this server takes at most {limit:,}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(f"the upload is over {limit:,} bytes, the most this server takes")
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
    if not isinstance(value, str) or not value.strip().isdigit() or not 1 <= int(value) <= most:
        shown = value[:20] if isinstance(value, str) else "a file"
        raise bad_field(f"top_k must be a whole number from 1 to {most}, not {shown!r}")
    return int(value)


def decode_error(error: ImageError, label: str) -> ApiError:
    message = f"{label}: {error.reason}"
    if isinstance(error, ImageTooLarge):
        return too_large(message)
    if isinstance(error, NotAnImage):
        return not_an_image(message)
    if isinstance(error, CorruptImage):
        return ApiError(422, "corrupt_image", message)
    return bad_field(message)


async def read_classify_request(request: Request, served: tuple[str, ...], settings: ServeSettings) -> ClassifyRequest:
    form = await parse_form(request, await read_body(request, settings.max_upload_bytes))
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
    start = time.perf_counter()
    try:
        image = await asyncio.to_thread(load_image, data, settings.draft_size)  # the part's type and name: not trusted
    except ImageError as e:
        raise decode_error(e, label) from None
    return ClassifyRequest(image, label, models, top_k, time.perf_counter() - start)
