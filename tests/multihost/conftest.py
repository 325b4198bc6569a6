"""Two hosts, one database: PostgreSQL (the suite's DATABASE_URL server) and Redis at
127.0.0.1:6379 are required; without either the tests here are skipped, saying which."""

import pytest
from django.conf import settings
from django.db import connection

from tests.multihost.cluster import Cluster, redis_is_up


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    if connection.vendor != "postgresql":
        pytest.skip("two hosts need one PostgreSQL database: run with DATABASE_URL=postgres://...")
    if not redis_is_up():
        pytest.skip("two hosts need a shared Redis cache, and none answers at 127.0.0.1:6379")
    cluster = Cluster(settings.DATABASES["default"], tmp_path_factory.mktemp("multihost"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def hosts(cluster):
    return cluster.hosts
