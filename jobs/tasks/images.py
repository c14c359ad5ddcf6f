"""Image thumbnails with Pillow, from an upload, returned as an artifact."""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import Annotated, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import Field

from jobs import progress, task
from jobs.context import connection
from jobs.records import uploaded_files
from jobs.records.artifacts import Artifact

MAX_INPUT_BYTES = 20 * 1024 * 1024
# A 5,000 × 5,000 image; larger ones are refused as possible decompression bombs (a 208 KB
# PNG can hold 49 megapixels of one colour, and decoding it took the process to 685 MB).
MAX_PIXELS = 25_000_000
# What an upload may be: Pillow would otherwise hand EPS to Ghostscript, and read dozens of
# other formats through C code nobody here needs.
INPUT_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


class NotAnImageError(ValueError):
    """The input is not an image Pillow can read."""


class ImageTooLargeError(ValueError):
    """The input is larger (in bytes or in pixels) than Offload will decode."""


def open_image(data: bytes, max_side: int = 4096) -> Image.Image:
    """Decode ``data`` safely: PNG, JPEG, GIF or WebP only, bounded bytes and pixels, the whole
    file checked."""
    if len(data) > MAX_INPUT_BYTES:
        raise ImageTooLargeError(f"the image has {len(data)} bytes; the limit is {MAX_INPUT_BYTES}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as probe:
                if probe.width * probe.height > MAX_PIXELS:
                    raise ImageTooLargeError(f"{probe.width}×{probe.height} pixels is over the limit of {MAX_PIXELS}")
                probe.verify()
            image = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
            image.draft("RGB", (max_side, max_side))  # JPEG decodes at the size needed, not in full
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(str(error)) from None
        except UnidentifiedImageError:  # its message names an in-memory object, not the file
            raise NotAnImageError("the upload is not a PNG, JPEG, GIF or WebP image") from None
        except (OSError, SyntaxError) as error:
            raise NotAnImageError(f"the image is damaged: {error}") from None
    return image


def make_thumbnails(data: bytes, sizes: list[int], fmt: str = "png") -> Artifact:
    """Thumbnails no larger than each size (aspect kept): one file, or a zip of several."""
    image = open_image(data, max(sizes))
    pillow_format, content_type = FORMATS[fmt]
    if pillow_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    made: dict[int, bytes] = {}
    # Largest first, each from the one before, in place: the full-size image is never copied.
    for index, size in enumerate(sorted(set(sizes), reverse=True), start=1):
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, pillow_format)
        made[size] = buffer.getvalue()
        progress(index, len(set(sizes)), f"{image.width}×{image.height}")
    files = [(f"thumbnail-{size}.{fmt}", made[size]) for size in dict.fromkeys(sizes)]
    if len(files) == 1:
        return Artifact(files[0][1], content_type, files[0][0])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files:
            bundle.writestr(name, content)
    return Artifact(archive.getvalue(), "application/zip", "thumbnails.zip")


# Decoding untrusted images is C code that may crash or balloon: each job gets its own process.
@task(timeout=300, isolated=True)
def thumbnail(
    image: Annotated[
        str,
        Field(
            pattern=r"^[0-9a-f]{32}$",
            description="the image: PNG, JPEG, GIF or WebP, up to 20 MiB (the API takes an upload's id)",
            json_schema_extra={"x-upload": "image/*"},  # the task form shows a file input
        ),
    ],
    sizes: Annotated[list[Annotated[int, Field(ge=8, le=4096)]], Field(min_length=1, max_length=10)] = [256],  # noqa: B006
    format: Literal["png", "jpeg", "webp"] = "png",
) -> Artifact:
    """Make thumbnails of an uploaded image, one per size (a zip when there are several)."""
    upload = uploaded_files.load(connection(), image)
    return make_thumbnails(upload.data, sizes, format)
