"""Structure checks on rendered pages: labels, headings, buttons, no script or foreign assets.

A small html.parser walk, so the checks need no browser and no extra package.
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict
    text: str = ""
    ancestors: list = field(default_factory=list)


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.stack = []

    VOID = {"input", "meta", "link", "br", "img", "hr", "source", "area", "base", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), ancestors=list(self.stack))
        self.elements.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        for element in self.stack:
            element.text += data


def parse(response):
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser.elements


def find(elements, tag, **attrs):
    return [
        e for e in elements if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())
    ]


def text_of(element):
    return " ".join(element.text.split())


def structure_problems(response):
    """Every accessibility and safety rule the pages keep, as a list of broken ones."""
    elements = parse(response)
    problems = []
    html = find(elements, "html")
    if not html or not html[0].attrs.get("lang"):
        problems.append("<html> has no lang")
    titles = find(elements, "title")
    if len(titles) != 1 or not text_of(titles[0]):
        problems.append("the page needs exactly one non-empty <title>")
    headings = find(elements, "h1")
    if len(headings) != 1:
        problems.append(f"{len(headings)} <h1> elements, not one")
    ids = [e.attrs["id"] for e in elements if e.attrs.get("id")]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    if not find(elements, "main"):
        problems.append("no <main> landmark")
    labels_for = {e.attrs.get("for") for e in find(elements, "label")}
    for control in elements:
        if control.tag not in ("input", "select", "textarea"):
            continue
        if control.attrs.get("type") == "hidden":
            continue
        name = control.attrs.get("name")
        if control.attrs.get("type") in ("submit", "button", "reset", "image"):
            problems.append(f"<input type={control.attrs['type']}> {name}: use <button>")
            continue
        labelled = control.attrs.get("id") in labels_for or control.attrs.get("aria-label")
        if not labelled:
            problems.append(f"<{control.tag} name={name}> has no <label for>")
        if control.attrs.get("type") in ("checkbox", "radio") and not any(
            a.tag == "fieldset" for a in control.ancestors
        ):
            problems.append(f"{control.attrs['type']} {name} is not in a <fieldset>")
    for fieldset in find(elements, "fieldset"):
        if not any(fieldset in e.ancestors for e in find(elements, "legend")):
            problems.append("a <fieldset> has no <legend>")
    for button in find(elements, "button"):
        if not text_of(button):
            problems.append("a <button> has no text")
        if button.attrs.get("type") not in ("submit", "button"):
            problems.append(f"<button> {text_of(button)!r} has no explicit type")
    for form in find(elements, "form"):
        if form.attrs.get("method", "get").lower() != "post":
            continue
        inside = [e for e in elements if form in e.ancestors]
        if not find(inside, "input", name="csrfmiddlewaretoken"):
            problems.append("a POST form without a CSRF token")
    for element in elements:
        if element.tag == "script":
            problems.append("a <script> element")
        if "style" in element.attrs or any(k.startswith("on") for k in element.attrs):
            problems.append(f"inline style or handler on <{element.tag}>")
        for attr in ("src", "href"):
            value = element.attrs.get(attr) or ""
            if element.tag in ("link", "img", "script") and "//" in value:
                problems.append(f"external asset {value}")
    skip = [a for a in find(elements, "a") if (a.attrs.get("href") or "").startswith("#")]
    for link in skip:
        if link.attrs["href"][1:] not in ids:
            problems.append(f"in-page link {link.attrs['href']} has no target")
    return problems


def buttons(response):
    """(text, name, class) of each <button>, in document (and so keyboard) order."""
    return [
        (text_of(b), b.attrs.get("name"), b.attrs.get("class", ""))
        for b in find(parse(response), "button")
    ]
