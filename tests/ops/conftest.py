"""Operations fixtures: the threat personas (Iris on Core, Carl on Cloud) and a reader of
the Prometheus text the console serves."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.threats.conftest import _fast_settings, carl, iris  # noqa: F401 - fixtures


@pytest.fixture
def scrape(client):
    """Scrapes /metrics and returns {(name, frozenset(labels)): value}."""

    def read(**headers) -> dict:
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 200, answer.content
        samples = {}
        for family in text_string_to_metric_families(answer.content.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    return read


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))
