"""Screenshots of every step of a browser test, and the checks each page must pass.

Each step is shot at desktop (1280x800) and phone (390x844) widths into
test-output/screenshots/<test>/<nn>-<step>-<desktop|mobile>.png (git-ignored) for a person to
review. Taking a step also checks what a person would notice: nothing wider than a phone's
screen, no script error, no stylesheet or icon failing to load, no Content-Security-Policy
violation.
"""

import shutil


class Screens:
    DESKTOP = {"width": 1280, "height": 800}
    MOBILE = {"width": 390, "height": 844}

    def __init__(self, page, folder):
        self.page = page
        self.folder = folder
        self.count = 0
        self.problems = []
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("response", self._on_response)

    def _on_console(self, message):
        # A document answered with 4xx (an error page) is logged as "Failed to load resource";
        # failed sub-resources are caught in _on_response instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def _on_response(self, response):
        if response.status >= 400 and response.request.resource_type != "document":
            self.problems.append(f"{response.status} for {response.url}")

    def take(self, step):
        """Shoot the current page at both widths and check it; return the page."""
        self.count += 1
        for name, size in (("desktop", self.DESKTOP), ("mobile", self.MOBILE)):
            self.page.set_viewport_size(size)
            path = self.folder / f"{self.count:02d}-{step}-{name}.png"
            self.page.screenshot(path=path, full_page=True)
            if name == "mobile":
                overflow = self.page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{step}: {overflow}px wider than a phone screen"
        self.page.set_viewport_size(self.DESKTOP)
        assert self.problems == [], f"{step}: {self.problems}"
        return self.page
