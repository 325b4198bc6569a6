"""The app's side of a launch, played by the test: it builds the authorize URL the browser
opens, and serves the app's own pages (redirect URI, launch URI) from a small HTTP server on
127.0.0.1, so the browser really lands on the app's URL and the test reads what the server
sent it there. (Playwright's page.route cannot stand in: it does not see the request a
redirect leads to.)"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

from tests.smart_support import query_of

APP_PAGE = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Example app</title>"
    b"</head><body><h1>Example app</h1><p>The app now handles the response.</p></body></html>"
)


class AppPage(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(APP_PAGE)))
        self.end_headers()
        self.wfile.write(APP_PAGE)

    def log_message(self, format, *args):
        pass


class AppServer:
    """The app's origin: every path answers with the same plain page."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), AppPage)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.redirect_uri = self.origin + "/callback"
        self.launch_uri = self.origin + "/launch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def authorize_url(base, launch):
    return base + "/smart/authorize?" + urlencode(launch.params())


def wait_for_app(page, uri):
    """Wait until the browser is at the app's `uri`; return its query parameters."""
    page.wait_for_url(uri + "?*")
    return query_of(page.url)
