"""Token values: parsing `system|code` searches and extracting (system, code) from elements."""

import pytest

from fhir_api.exceptions import InvalidSearch
from fhir_api.search.escaping import split_escaped, unescape
from fhir_api.search.extract import tokens_of
from fhir_api.search.token import parse_token


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1234-5", (None, "1234-5")),
        ("http://loinc.org|1234-5", ("http://loinc.org", "1234-5")),
        ("|1234-5", ("", "1234-5")),
        ("http://loinc.org|", ("http://loinc.org", None)),
        (r"a\|b", (None, "a|b")),
        (r"s|a\,b", ("s", "a,b")),
    ],
)
def test_parse_token_forms(text, parsed):
    assert parse_token(text) == parsed


@pytest.mark.parametrize("text", ["", "|", "a|b|c"])
def test_parse_token_rejects_malformed(text):
    with pytest.raises(InvalidSearch):
        parse_token(text)


def test_split_escaped_keeps_escaped_separators():
    assert split_escaped(r"a,b\,c,d", ",") == ["a", r"b\,c", "d"]
    assert unescape(r"b\,c\|d\\e") == "b,c|d\\e"
    assert unescape(r"C:\path") == r"C:\path"


def test_tokens_of_codeable_concept_gives_every_coding_and_not_text():
    concept = {
        "coding": [
            {"system": "http://loinc.org", "code": "29463-7"},
            {"system": "http://snomed.info/sct", "code": "27113001"},
            {"display": "no code"},
        ],
        "text": "Body weight",
    }
    assert tokens_of(concept) == [
        ("http://loinc.org", "29463-7"),
        ("http://snomed.info/sct", "27113001"),
    ]


def test_tokens_of_other_token_types():
    assert tokens_of({"system": "urn:oid:1.2", "value": "12345"}) == [("urn:oid:1.2", "12345")]
    assert tokens_of({"system": "phone", "value": "555"}) == [("phone", "555")]
    assert tokens_of({"system": "http://x", "code": "c"}) == [("http://x", "c")]
    assert tokens_of("final") == [("", "final")]
    assert tokens_of(True) == [("", "true")]
    assert tokens_of(False) == [("", "false")]


def test_tokens_of_odd_values_gives_nothing():
    assert tokens_of({"text": "only text"}) == []
    assert tokens_of({"coding": "not a list"}) == []
    assert tokens_of(12) == []
    assert tokens_of("") == []


def test_tokens_are_cut_to_the_indexed_length():
    [(system, code)] = tokens_of({"system": "s" * 300, "code": "c" * 300})
    assert len(system) == len(code) == 255
