"""The connectors' parsers against arbitrary JSON (hypothesis): the only outcomes are the
documented ones, and whatever they keep is text a database column can hold."""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.mdm.connectors import cloud, core, parsing
from bastion.mdm.connectors.base import (
    AppRecord,
    DeviceRecord,
    InvalidAnswer,
    MdmGroup,
    ProfileRecord,
    SkippedRecord,
)
from bastion.mdm.connectors.http import parse_json

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Lu", "Nd"]), max_size=20),
    st.sampled_from(
        [
            "",
            "*****",
            "null",
            "N/A",
            "<script>alert(1)</script>",
            "\x00",
            "\ud800",
            "ACTIVE",
            "iOS",
            "ANDROID",
            "a@b.c",
            "1" * 400,
            "x" * 300,
            "2f1d7c1e-0000-4000-8000-000000000001",
        ]
    ),  # fmt: skip
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def records(keys) -> st.SearchStrategy:
    """Objects that use the parser's own field names, with hostile values."""
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys))


CORE_KEYS = list(core.FIELDS) + ["common.uuid", "common.status", "common.platform"]
CLOUD_KEYS = [
    "id", "registrationState", "platformType", "platformVersion", "prettyModel",
    "deviceModel", "manufacturer", "deviceName", "entityName", "guid", "serialNumber",
    "udid", "lastCheckin", "uid", "emailAddress", "firstName", "lastName", "displayName",
]  # fmt: skip


def assert_storable(record) -> None:
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if dataclasses.is_dataclass(value):
            assert_storable(value)
        elif isinstance(value, str):
            assert not parsing.NOT_TEXT.search(value), f"{field.name} holds NUL or a surrogate"
            assert len(value) <= parsing.NAME_MAX, f"{field.name} is {len(value)} long"


def assert_device_outcome(result) -> None:
    assert isinstance(result, DeviceRecord | SkippedRecord), type(result)
    if isinstance(result, DeviceRecord):
        assert result.mdm_id and result.platform in ("ios", "android")
        assert_storable(result)
    else:
        assert isinstance(result.reason, str) and result.reason


@FUZZ
@given(st.one_of(json_values, records(CORE_KEYS)))
def test_core_device_parser_only_keeps_or_skips(raw):
    assert_device_outcome(core.parse_device(raw))


@FUZZ
@given(st.one_of(json_values, records(CLOUD_KEYS)))
def test_cloud_device_parser_only_keeps_or_skips(raw):
    assert_device_outcome(cloud.parse_device(raw))


@FUZZ
@given(st.one_of(json_values, records(["id", "name", "static", "criteria", "labelType", "space"])))
def test_core_label_parser_returns_a_group_or_none(raw):
    result = core.parse_label(raw)

    assert result is None or isinstance(result, MdmGroup)


@FUZZ
@given(st.one_of(json_values, records(["id", "name", "definition", "systemName", "space"])))
def test_cloud_group_parser_returns_a_group_or_none(raw):
    result = cloud.parse_group(raw)

    assert result is None or isinstance(result, MdmGroup)


@FUZZ
@given(st.one_of(json_values, records(["identifier", "name", "version", "displayName"])))
def test_app_and_profile_parsers_keep_storable_text_or_drop(raw):
    app = parsing.app(raw)
    profile = parsing.profile(raw)

    assert app is None or isinstance(app, AppRecord)
    assert profile is None or isinstance(profile, ProfileRecord)
    for kept in (app, profile):
        if kept is not None:
            assert_storable(kept)


@FUZZ
@given(st.binary(max_size=200))
def test_any_answer_body_is_json_or_an_invalid_answer(body):
    try:
        parse_json(body)
    except InvalidAnswer:
        pass


def test_a_deeply_nested_answer_is_an_invalid_answer_not_a_crash():
    body = b"[" * 100_000 + b"]" * 100_000

    try:
        result = parse_json(body)
    except InvalidAnswer:
        result = None

    assert result is None or isinstance(result, list)


@FUZZ
@given(json_values)
def test_page_envelopes_are_read_or_refused_as_invalid_answers(data):
    for read in (
        lambda: core.envelope(data, "devices"),
        lambda: cloud.search_page(data, "devices"),
        lambda: cloud.cps_page(data, "apps"),
        lambda: cloud.result_of(data, "device"),
    ):
        try:
            read()
        except InvalidAnswer:
            pass
