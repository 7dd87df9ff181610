import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gregor_cluster import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.up()
    except Exception:
        c.down()
        raise
    try:
        yield c
    finally:
        failed = getattr(c, "failed", False)
        if failed:
            print(c.logs())
        c.down()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "cluster" in item.funcargs:
        item.funcargs["cluster"].failed = True
