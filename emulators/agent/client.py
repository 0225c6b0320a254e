"""One simulated agent: its credential, its cached matrix, its reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

API_PATH = "/api/device/v1"


class AgentError(Exception):
    """Bastion refused a call; `status` and `body` say how."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def credential_from_activation(answer: dict) -> str:
    """The credential in an activation answer: the hook the activation flow plugs into.

    Accepts {"credential": "..."} or {"credential": {"token": "..."}}.
    """
    value = answer.get("credential")
    if isinstance(value, dict):
        value = value.get("token")
    if not isinstance(value, str) or not value:
        raise ValueError("the activation answer carries no credential")
    return value


def activate(base_url: str, payload: dict, *, timeout: float = 20.0) -> tuple[int, dict]:
    """Asks Bastion to activate a device; returns the status and the answer.

    `payload` is what the agent was given: {"token", "mdm_id"} from an activation link,
    {"activation_code", "mdm_id"} from an MTD code, or the managed app config
    ({"uuid" or "MDMDeviceID", "tenantid", "defaultchannel"}). 200 carries the
    credential; 202 means an administrator must approve a re-activation first, and
    {"request_id", "pickup_token"} collect it later with `pickup`.
    """
    url = base_url.rstrip("/") + API_PATH + "/activate"
    response = httpx.post(url, json=payload, timeout=timeout)
    return response.status_code, Agent._json(response)


def pickup(base_url: str, request_id, pickup_token: str, *, timeout: float = 10.0):
    """Collects the credential of an approved re-activation; returns status and answer."""
    url = base_url.rstrip("/") + API_PATH + "/activate/pickup"
    body = {"request_id": request_id, "pickup_token": pickup_token}
    response = httpx.post(url, json=body, timeout=timeout)
    return response.status_code, Agent._json(response)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Agent:
    """A device agent. `base_url` is Bastion's address, e.g. http://127.0.0.1:8000."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        name: str = "",
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.name = name
        self.http = client or httpx.Client(timeout=timeout)
        self.matrix: dict | None = None
        self.etag: str | None = None
        self.matrix_fetches = 0
        self.matrix_unchanged = 0

    @classmethod
    def from_activation(cls, base_url: str, answer: dict, **options) -> Agent:
        agent = cls(base_url, credential_from_activation(answer), **options)
        if isinstance(answer.get("matrix"), dict):
            agent.matrix = answer["matrix"]
        return agent

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.credential}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.base_url + API_PATH + path, headers=headers, **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise AgentError(response.status_code, body)
        return body

    def fetch_matrix(self) -> dict:
        """The group's matrix; sends the last ETag, so an unchanged one costs nothing."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        response = self._call("GET", "/matrix", headers=headers)
        self.matrix_fetches += 1
        if response.status_code == 304 and self.matrix is not None:
            self.matrix_unchanged += 1
            return self.matrix
        self.matrix = self._json(response)
        self.etag = response.headers.get("ETag")
        return self.matrix

    def report(
        self,
        threat_id: str,
        *,
        event_id: str | None = None,
        detected_at: str | None = None,
        details: dict | None = None,
    ) -> dict:
        body = {
            "event_id": event_id or uuid.uuid4().hex,
            "threat_id": threat_id,
            "detected_at": detected_at or now_iso(),
            "details": details or {},
        }
        return self._json(self._call("POST", "/threats", json=body))

    def report_batch(self, events: list[dict]) -> list[dict]:
        batch = []
        for event in events:
            batch.append(
                {
                    "event_id": event.get("event_id") or uuid.uuid4().hex,
                    "threat_id": event["threat_id"],
                    "detected_at": event.get("detected_at") or now_iso(),
                    "details": event.get("details") or {},
                }
            )
        return self._json(self._call("POST", "/threats/batch", json={"events": batch}))["events"]

    def mitigate(
        self, event_id: str, *, threat_id: str | None = None, mitigated_at: str | None = None
    ) -> dict:
        body: dict[str, Any] = {"mitigated_at": mitigated_at or now_iso()}
        if threat_id:
            body["threat_id"] = threat_id
        return self._json(self._call("POST", f"/threats/{event_id}/mitigation", json=body))

    def close(self) -> None:
        self.http.close()
