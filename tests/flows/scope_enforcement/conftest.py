"""The live-server fixture the fhirclient tests share with tests/flows/fhirclient_launch."""

from tests.flows.fhirclient_launch.test_fhirclient import live_base  # noqa: F401
