"""Word count of a web page: RQ's classic first example, with the sharp edges filed off."""

from __future__ import annotations

import collections
import re
from html.parser import HTMLParser
from typing import Annotated

import requests
from pydantic import Field, HttpUrl

from jobs import progress, task
from jobs.outbound import request

CHUNK = 64 * 1024
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


class PageTooLargeError(ValueError):
    """The page is larger than the task's size cap."""


class _TextOnly(HTMLParser):
    """Collects the visible text of an HTML page (not scripts, styles or markup)."""

    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def count_words(html: str) -> collections.Counter[str]:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return collections.Counter(word.lower() for word in WORD.findall(" ".join(parser.parts)))


@task(timeout=120, retry=2)
def word_count(
    url: HttpUrl,
    max_bytes: Annotated[int, Field(ge=1024, le=50 * 1024 * 1024)] = 5 * 1024 * 1024,
    timeout: Annotated[float, Field(gt=0, le=60)] = 10.0,
) -> dict:
    """Fetch a page (size-capped, with a timeout) and count the words of its visible text."""
    with requests.Session() as session:
        response = request(session, "GET", str(url), stream=True, timeout=timeout)
        with response:
            response.raise_for_status()
            expected = int(response.headers.get("Content-Length") or 0) or None
            if expected and expected > max_bytes:
                raise PageTooLargeError(f"{url} is {expected} bytes; the cap is {max_bytes}")
            received = bytearray()
            for chunk in response.iter_content(CHUNK):
                received.extend(chunk)
                if len(received) > max_bytes:
                    raise PageTooLargeError(f"{url} sent more than the cap of {max_bytes} bytes")
                progress(len(received), expected, f"{len(received)} bytes received")
            text = received.decode(response.encoding or "utf-8", errors="replace")
    counts = count_words(text)
    return {
        "url": str(url),
        "bytes": len(received),
        "words": sum(counts.values()),
        "distinct": len(counts),
        "top": counts.most_common(10),
    }
