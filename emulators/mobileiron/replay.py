"""Replay mode: answer from recorded responses instead of the stateful emulator.

A recordings folder holds one sub-folder per product (`core/`, `cloud/`), each with one JSON
file per recorded exchange (file names are free; they are read in sorted order):

    {
      "request": {"method": "GET", "path": "/api/v2/devices",
                  "query": {"labelId": "-1", "offset": "0"}, "body": null},
      "response": {"status": 200, "headers": {"Retry-After": "2"}, "body": {...}}
    }

`path` is the decoded path below the product's base URL. A recording matches a request with
the same method and path whose query holds every recorded `query` item with the same value
(other request parameters are ignored, so `fields=` lists need not be recorded); a recorded
`body` must equal the request's JSON body. Among matches the one with the most recorded query
items wins, then the first file. `response.text` may replace `response.body` to serve a raw,
possibly broken, body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .common import JSON_TYPE, Response, dumps

PRODUCTS = ("core", "cloud")


@dataclass
class Recording:
    source: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""


class ReplayStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"recordings folder {self.folder} does not exist")
        self.recordings: dict[str, list[Recording]] = {}
        for product in PRODUCTS:
            directory = self.folder / product
            if not directory.is_dir():
                continue
            self.recordings[product] = [
                self._load(path) for path in sorted(directory.rglob("*.json"))
            ]

    @property
    def products(self) -> list[str]:
        return list(self.recordings)

    @staticmethod
    def _load(path: Path) -> Recording:
        data = json.loads(path.read_text(encoding="utf-8"))
        request, response = data["request"], data["response"]
        if "text" in response:
            payload = response["text"].encode()
        else:
            payload = dumps(response.get("body"))
        return Recording(
            source=path.name,
            method=request.get("method", "GET").upper(),
            path=request["path"],
            query={k: str(v) for k, v in (request.get("query") or {}).items()},
            body=request.get("body"),
            status=int(response.get("status", 200)),
            headers=dict(response.get("headers") or {}),
            payload=payload,
        )

    def match(
        self, product: str, method: str, raw_path: str, query: dict[str, list[str]], body: bytes
    ) -> Recording | None:
        path = unquote(raw_path)
        parsed_body: Any = None
        if body:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                parsed_body = None
        best, best_score = None, -1
        for rec in self.recordings.get(product, ()):
            if rec.method != method or rec.path != path:
                continue
            if any((query.get(k) or [None])[0] != v for k, v in rec.query.items()):
                continue
            if rec.body is not None and rec.body != parsed_body:
                continue
            if len(rec.query) > best_score:
                best, best_score = rec, len(rec.query)
        return best

    @staticmethod
    def respond(rec: Recording) -> Response:
        headers = [(k, v) for k, v in rec.headers.items() if k.lower() != "content-type"]
        content_type = next(
            (v for k, v in rec.headers.items() if k.lower() == "content-type"), JSON_TYPE
        )
        return Response(rec.status, rec.payload, headers, content_type)

    @staticmethod
    def missing(product: str, method: str, raw_path: str, raw_query: str) -> Response:
        target = unquote(raw_path) + (f"?{raw_query}" if raw_query else "")
        return Response(
            404,
            dumps(
                {
                    "emulator": "replay",
                    "error": "no recorded response for this request",
                    "product": product,
                    "method": method,
                    "path": target,
                }
            ),
        )
