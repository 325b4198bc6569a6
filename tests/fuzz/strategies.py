"""Hypothesis strategies for hostile input: odd text, odd JSON, odd headers.

Shared by the property tests of every endpoint. They aim at what breaks parsers: control
characters, NULs, very long values, wrong JSON types where objects are expected, deep nesting,
numbers at the edges, and the look of real values (resource types, references, dates).
"""

from hypothesis import strategies as st

from fhir_api.resource_types import RESOURCE_TYPES

# Text with everything Unicode offers, including NUL, surrogates excluded (not encodable).
nasty_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=60
) | st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "%00",
        "../../etc/passwd",
        "'; DROP TABLE fhir_api_resource; --",
        "<script>alert(1)</script>",
        "a" * 5000,
        "\u202e",
        "null",
        "[]",
        "{}",
        "-1",
        "1e309",
        "9" * 40,
        "Patient/",
        "Patient/../Observation/1",
        "http://evil.example.org/fhir/Patient/1",
        "2024-13-45",
        "ge2024-01-01T25:61:00Z",
        "urn:uuid:not-a-uuid",
        "|",
        "a|b|c",
        ",,,",
        "$",
        "\\",
    ]
)

resource_type_names = st.sampled_from(sorted(RESOURCE_TYPES)) | nasty_text

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | nasty_text
)

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            nasty_text | st.sampled_from(["id", "resourceType", "meta"]), children, max_size=4
        )
    ),
    max_leaves=20,
)


@st.composite
def resource_like(draw, resource_type=None):
    """A dict that looks like a resource to a first glance: a resourceType and odd fields."""
    data = draw(st.dictionaries(nasty_text, json_values, max_size=5))
    data["resourceType"] = resource_type or draw(resource_type_names)
    if draw(st.booleans()):
        data["id"] = draw(json_scalars)
    if draw(st.booleans()):
        data["meta"] = draw(json_values)
    return data


@st.composite
def bundle_like(draw):
    """A transaction or batch Bundle whose entries are partly valid, partly hostile."""
    entries = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        method = draw(st.sampled_from(["POST", "PUT", "DELETE", "GET", "PATCH", "BOGUS"]))
        url = draw(st.sampled_from(["Patient", "Observation", "Patient/p1"]) | nasty_text)
        entry = {"request": {"method": method, "url": url}}
        if draw(st.booleans()):
            entry["resource"] = draw(
                st.sampled_from(
                    [
                        {"resourceType": "Patient", "name": [{"family": "Fuzz"}]},
                        {"resourceType": "Observation", "status": "final"},
                    ]
                )
                | resource_like()
            )
        if draw(st.booleans()):
            entry["fullUrl"] = draw(nasty_text)
        entries.append(
            draw(st.sampled_from([entry, {"request": draw(json_values)}, draw(json_values)]))
        )
    return {
        "resourceType": "Bundle",
        "type": draw(st.sampled_from(["transaction", "batch", "collection"]) | nasty_text),
        "entry": entries,
    }


query_params = st.dictionaries(
    st.sampled_from(
        [
            "_id",
            "_count",
            "_sort",
            "_include",
            "_revinclude",
            "_summary",
            "_elements",
            "_total",
            "_format",
            "_lastUpdated",
            "patient",
            "subject",
            "code",
            "date",
            "name",
            "identifier",
            "category",
            "status",
            "_has:Observation:patient:code",
            "name:exact",
            "code:text",
            "date:missing",
            "subject:Patient",
            "page",
        ]
    )
    | nasty_text,
    nasty_text,
    max_size=4,
)

# What a header can carry: WSGI servers decode header bytes as Latin-1 (PEP 3333), so every
# character is below U+0100; CR and LF end a header.
header_values = st.text(
    alphabet=st.characters(max_codepoint=0xFF, blacklist_characters="\r\n"), max_size=80
) | st.sampled_from(["a" * 5000, "Bearer", "Bearer a b", "\x00", "null"])
