"""What a person does on the pages, in the browser: sign in, tick or untick a row."""

from playwright.sync_api import expect


def sign_in(page, username, password):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def click_row(page, control):
    """Click a checkbox's or radio's row, as a person does: the whole row is its label
    (a label overlay covers the small box itself)."""
    page.locator(".choice", has=control).click()


def untick(page, scope):
    checkbox = page.get_by_role("checkbox", name=scope)
    click_row(page, checkbox)
    expect(checkbox).not_to_be_checked()


def pick_patient(page, name):
    radio = page.get_by_role("radio", name=name)
    click_row(page, radio)
    expect(radio).to_be_checked()


# What the focused element shows: a ring (outline or box-shadow) at least 2px wide, drawn
# because the browser judged the focus keyboard-driven (:focus-visible).
FOCUS_STYLE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    return {
        tag: el.tagName.toLowerCase(),
        label: (el.getAttribute("aria-label") || el.innerText || el.value || el.id || "").trim(),
        focusVisible: el.matches(":focus-visible"),
        ring: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
            || style.boxShadow !== "none",
        onScreen: rect.width > 0 && rect.height > 0 && rect.bottom > 0
            && rect.right > 0 && rect.top < innerHeight && rect.left < innerWidth,
    };
}"""


def tab_to(page, target, limit=40):
    """Press Tab until `target` (a locator) has the focus, checking on the way that every
    element the keyboard reaches shows a visible focus ring on screen. Returns the stops."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus is None:
            continue
        stops.append(focus["label"])
        assert focus["focusVisible"] and focus["ring"], f"no visible focus ring on {focus}"
        assert focus["onScreen"], f"the focused element is off screen: {focus}"
        if target.evaluate("el => el === document.activeElement"):
            return stops
    raise AssertionError(f"Tab never reached {target}; stops: {stops}")
