"""Content-Encoding handling that can never be turned into a decompression bomb: one
layer at most, and every call returns no more bytes than the caller still allows."""

from __future__ import annotations

import zlib

from monitor.errors import FetchRejected
from monitor.sources.urlpolicy import redact_url


class Inflater:
    """gzip/deflate decoding that never produces more than it is asked for."""

    def __init__(self, encoding: str) -> None:
        self._wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(self._wbits)
        self._raw_fallback = encoding == "deflate"

    def decode(self, data: bytes, limit: int) -> bytes:
        out: list[bytes] = []
        produced = 0
        while data and produced < limit:
            chunk = self._inflate(data, limit - produced)
            produced += len(chunk)
            out.append(chunk)
            data = self._z.unconsumed_tail
            if self._z.eof:  # a second gzip member follows, or trailing junk
                data = self._z.unused_data
                if data:
                    self._z = zlib.decompressobj(self._wbits)
        return b"".join(out)

    def _inflate(self, data: bytes, limit: int) -> bytes:
        try:
            chunk = self._z.decompress(data, limit)
        except zlib.error:
            if not self._raw_fallback:
                raise
            # Some servers send raw deflate (no zlib header) as "deflate".
            self._wbits, self._raw_fallback = -zlib.MAX_WBITS, False
            self._z = zlib.decompressobj(self._wbits)
            chunk = self._z.decompress(data, limit)
        self._raw_fallback = False
        return chunk


class Identity:
    def decode(self, data: bytes, limit: int) -> bytes:
        return data


def make_decoder(encodings: list[str], url: str) -> Inflater | Identity:
    layers = [
        token.strip().lower()
        for value in encodings
        for token in value.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if len(layers) > 1:
        raise FetchRejected("encoding", f"{redact_url(url)}: stacked Content-Encoding {layers}")
    if not layers:
        return Identity()
    if layers[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchRejected("encoding", f"{redact_url(url)}: unsupported encoding {layers[0]!r}")
    return Inflater(layers[0])
