"""Plain HTTP to one server process, as a load balancer would forward it (stdlib only).

Every request carries the public host name and `X-Forwarded-Proto: https`, as from a
TLS-terminating proxy; redirects are returned, never followed, so each step says which host
answered it. `Browser` keeps cookies across hosts like a browser that only knows the one
public name.
"""

import base64
import http.client
import json
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

PUBLIC_HOST = "smart.example.test"
PUBLIC_BASE_URL = f"https://{PUBLIC_HOST}"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)

    @property
    def location(self):
        return self.headers["Location"]

    def form_field(self, name):
        """The value of a hidden form field on an HTML page (e.g. the CSRF token)."""
        found = re.search(rf'name="{name}" value="([^"]*)"', self.text)
        assert found, f"no {name} field in the page"
        return found.group(1)


class Host:
    """One server process (a gunicorn on its own port)."""

    def __init__(self, name, port):
        self.name = name
        self.port = port

    def __repr__(self):
        return f"Host({self.name}, {self.port})"

    def request(self, method, path, *, form=None, json_body=None, headers=None):
        headers = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https", **(headers or {})}
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)


class Browser:
    """A person's browser: one cookie jar for the public site, whichever host answers."""

    def __init__(self):
        self.cookies = {}

    def request(self, host, method, path, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":  # a same-origin form post, as Django's CSRF check over HTTPS wants
            headers.setdefault("Origin", PUBLIC_BASE_URL)
            headers.setdefault("Referer", PUBLIC_BASE_URL + path)
        response = host.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, host, path, **kwargs):
        return self.request(host, "GET", path, **kwargs)

    def submit(self, host, path, form, page):
        """POST a form of `page` (the Response that showed it), with its CSRF token."""
        form = {**form, "csrfmiddlewaretoken": page.form_field("csrfmiddlewaretoken")}
        return self.request(host, "POST", path, form=form)


def path_of(url):
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_of(url):
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def basic_auth(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}
