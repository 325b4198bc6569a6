"""Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's live server.

No browser is ever downloaded: Chromium comes from the system (`apt-get install chromium`,
which `.ci/run` does). Without /usr/bin/chromium every test here is skipped, and the end of
the pytest run says so in one line, so a green run without them is never mistaken for a full one.

pytest-playwright's `page` and `new_context` fixtures are used as they are (so its
--tracing, --video and --screenshot options work); `playwright` and `browser` are replaced by
package-scoped ones. Playwright's sync API keeps an asyncio loop running in the main thread
while it is started, and Django refuses ORM calls when a loop is running; so Playwright
runs only while this package's tests do, with DJANGO_ALLOW_ASYNC_UNSAFE set for exactly that
time (these tests are synchronous: the loop is Playwright's, not ours).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.app_side import AppServer
from tests.browser.screens import Screens

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
]
SKIP_REASON = f"{CHROMIUM} is missing (apt-get install -y chromium)"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

_skipped = []


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"BROWSER TESTS SKIPPED ({len(_skipped)}): {SKIP_REASON}", yellow=True, bold=True
        )


@pytest.fixture(scope="package")
def playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as started:
            yield started


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
        "headless": browser_type_launch_args.get("headless", True),
    }


@pytest.fixture(scope="package")
def browser(playwright, browser_type_launch_args):
    chromium = playwright.chromium.launch(**browser_type_launch_args)
    yield chromium
    chromium.close()


@pytest.fixture(scope="package")
def browser_context_args():
    return {"viewport": Screens.DESKTOP, "locale": "en-GB", "timezone_id": "UTC"}


@pytest.fixture
def context(new_context):
    """pytest-playwright's context, failing after 10 s instead of 30 s."""
    browser_context = new_context()
    browser_context.set_default_timeout(10_000)
    return browser_context


@pytest.fixture(scope="package")
def app_server():
    """The test app's own web server (its redirect and launch URIs)."""
    server = AppServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests sign in for real, through the form; PBKDF2's deliberate slowness (about a
    second per user created or signed in) would be most of their run time. Set before the
    user fixtures hash their passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def live_base(live_server, settings):
    """Point every absolute URL of the server (issuer, FHIR base, aud) at the live server."""
    base = live_server.url
    settings.PUBLIC_BASE_URL = base
    settings.FHIR_BASE_URL = base + "/fhir"
    settings.FHIR = {**settings.FHIR, "BASE_URL": base + "/fhir"}
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": base}
    settings.SMART = {**settings.SMART, "ADMIN_AUDIENCE": base + "/smart/apps"}
    return base


@pytest.fixture
def screens(page, request):
    """Screenshots of each step, desktop and mobile, under test-output/screenshots/<test>/,
    with the checks every page must pass (see Screens.take)."""
    return Screens(page, SCREENSHOTS / request.node.name.replace("[chromium]", ""))
