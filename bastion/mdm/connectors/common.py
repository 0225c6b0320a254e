"""What the Core and Cloud connectors share: the HTTP set-up, paging guards, the checks."""

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from bastion.mdm.connectors import parsing
from bastion.mdm.connectors.base import (
    ActionRejected,
    BadUrl,
    CheckResult,
    ConnectionReport,
    Connector,
    Forbidden,
    InvalidAnswer,
    MdmError,
    ProfileRecord,
    TlsError,
    Transient,
    Unauthorized,
    Unreachable,
)
from bastion.mdm.connectors.http import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_BODY_BYTES,
    MAX_RETRY_AFTER,
    HttpClient,
    OnResponse,
)

T = TypeVar("T")

# Ids we put inside an MDM query string ("common.uuid=\"…\"", "DEVICEGROUP EQ '…'"): a
# quote in one would change the query, so anything unusual is refused before the call.
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Core's documented ceiling for offsets; a pager past it is going round in circles.
MAX_OFFSET = 10_000_000
# Retries a connection test allows itself per call.
TEST_RETRIES = 1


class MobileIronConnector(Connector):
    """Owns the HTTP client. A bad URL does not raise here, so that test_connection can
    report it; every other call raises it."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        allow_http: bool = False,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_retry_after: float = MAX_RETRY_AFTER,
        max_bytes: int = MAX_BODY_BYTES,
        on_response: OnResponse | None = None,
    ):
        self._http: HttpClient | None = None
        self._setup_error: MdmError | None = None
        try:
            self._http = HttpClient(
                url,
                username,
                password,
                allow_http=allow_http,
                ca_bundle=ca_bundle,
                verify_tls=verify_tls,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                max_retry_after=max_retry_after,
                max_bytes=max_bytes,
                on_response=on_response,
            )
        except (BadUrl, TlsError) as error:
            self._setup_error = error

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            error = self._setup_error or BadUrl("the connector has no usable address")
            raise type(error)(str(error))
        return self._http

    def test_connection(self) -> ConnectionReport:
        checks = Checks()
        if self._http is None:
            return checks.fail_setup(self._setup_error)

        with self._http.retries_at_most(TEST_RETRIES):
            try:
                self._run_checks(checks)
            except StopChecks:
                pass
        self._note_unchecked(checks)
        return checks.report()

    def _run_checks(self, checks: "Checks") -> None:
        """Runs each read call a sync makes, smallest pages; raises StopChecks when the
        rest can't tell anything more."""
        raise NotImplementedError

    def _note_unchecked(self, checks: "Checks") -> None:
        """Notes what can't be checked without changing a device."""

    def _cps_profiles(
        self, by_identifier: dict[str, str], identifier_type: str, batch_size: int, role: str
    ) -> dict[str, list[ProfileRecord]]:
        """iOS profiles from CPS, for devices keyed by lower-cased CPS identifier."""
        found: dict[str, list[ProfileRecord]] = {}
        for batch in batches(sorted(by_identifier), batch_size):
            data = self.http.request(
                "POST",
                "/msa/v1/cps/device/profile",
                json_body={"identifiers": batch, "identifierType": identifier_type},
                role=role,
            )
            for entry in parsing.as_list(data, "profile inventory"):
                if not isinstance(entry, Mapping) or not isinstance(entry.get("deviceMdmId"), str):
                    continue
                mdm_id = by_identifier.get(entry["deviceMdmId"].lower())
                items = entry.get("profiles")
                if mdm_id is None or not isinstance(items, list):
                    continue
                profiles = [parsing.profile(item) for item in items]
                found.setdefault(mdm_id, []).extend(p for p in profiles if p is not None)
        return found

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class PageGuard:
    """Stops a pager that repeats itself or returns nothing while promising more."""

    def __init__(self, what: str):
        self.what = what
        self.previous: tuple | None = None

    def check(self, ids: tuple, offset: int, *, more: bool) -> None:
        if not ids and more:
            raise InvalidAnswer(
                f"{self.what}: the MDM sent an empty page at offset {offset} "
                "while saying more records follow"
            )
        if ids and ids == self.previous:
            raise InvalidAnswer(
                f"{self.what}: the page at offset {offset} repeats the previous page"
            )
        if offset > MAX_OFFSET:
            raise InvalidAnswer(f"{self.what}: paging passed offset {MAX_OFFSET}")
        self.previous = ids


def page_ids(results: list, key: str) -> tuple:
    """What identifies a page, to notice the same page twice."""
    return tuple(
        str(item.get(key))[:200] if isinstance(item, dict) else type(item).__name__
        for item in results
    )


def batches(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@contextmanager
def refusal_as_rejection(what: str) -> Iterator[None]:
    """A 4xx answer to an action (a retired device, an empty value) is the MDM saying no,
    with its reason; the response engine records that as a rejection."""
    try:
        yield
    except InvalidAnswer as error:
        if error.status is not None and 400 <= error.status < 500:
            raise ActionRejected(f"{what}: {error}", status=error.status) from None
        raise


def problem_of(error: MdmError) -> str:
    if isinstance(error, BadUrl):
        return "bad_url"
    if isinstance(error, TlsError):
        return "tls"
    if isinstance(error, Unreachable | Transient):
        return "unreachable"
    if isinstance(error, Unauthorized):
        return "unauthorized"
    if isinstance(error, Forbidden):
        return "forbidden"
    return "invalid"


class StopChecks(Exception):
    """A failure after which no further check can tell anything (no answer, bad login)."""


class Checks:
    """Runs the read calls a sync will make and keeps a CheckResult for each."""

    def __init__(self):
        self.results: list[CheckResult] = []
        self.warnings: list[str] = []
        self.version = ""
        self.problem = ""
        self.message = ""

    def run(self, name: str, call: Callable[[], Any], *, role: str = "", detail: str = ""):
        """Returns what `call` returned, or None when it failed (recorded as a check)."""
        try:
            value = call()
        except Forbidden as error:
            missing = error.role or role
            self.results.append(CheckResult(name, False, str(error), role=missing))
            self._fail("forbidden", str(error))
            return None
        except MdmError as error:
            self.results.append(CheckResult(name, False, str(error)))
            self._fail(problem_of(error), str(error))
            if isinstance(error, BadUrl | TlsError | Unreachable | Transient | Unauthorized):
                raise StopChecks from None
            return None

        self.results.append(CheckResult(name, True, detail))
        return value

    def note(self, name: str, detail: str, *, role: str = "") -> None:
        self.results.append(CheckResult(name, None, detail, role=role))

    def _fail(self, problem: str, message: str) -> None:
        if not self.problem:
            self.problem = problem
            self.message = message

    def report(self) -> ConnectionReport:
        roles = [check.role for check in self.results if check.ok is False and check.role]
        message = self.message
        if self.problem == "forbidden" and roles:
            message = "the account lacks these roles: " + ", ".join(dict.fromkeys(roles))
        return ConnectionReport(
            ok=not self.problem,
            problem=self.problem,
            message=message,
            version=self.version,
            warnings=self.warnings,
            checks=self.results,
        )

    def fail_setup(self, error: MdmError) -> ConnectionReport:
        self.results.append(CheckResult("address", False, str(error)))
        self._fail(problem_of(error), str(error))
        return self.report()
