"""String normalisation: the same folding at write and search time on every database."""

from fhir_api.search.extract import strings_of
from fhir_api.search.string import normalise


def test_normalise_folds_case_and_accents():
    assert normalise("Ärztë") == "arzte"
    assert normalise("CHALMERS") == "chalmers"
    assert normalise("Straße") == "strasse"
    assert normalise("Zoë") == normalise("zoe")


def test_normalise_cuts_to_the_indexed_length():
    assert len(normalise("é" * 300)) == 255


def test_strings_of_human_name_gives_every_part():
    name = {
        "use": "official",
        "text": "Dr Peter James Chalmers Jr",
        "family": "Chalmers",
        "given": ["Peter", "James"],
        "prefix": ["Dr"],
        "suffix": ["Jr"],
    }
    assert strings_of(name) == [
        "Dr Peter James Chalmers Jr",
        "Chalmers",
        "Peter",
        "James",
        "Dr",
        "Jr",
    ]


def test_strings_of_address_gives_lines_and_places():
    address = {"use": "home", "line": ["534 Erewhon St"], "city": "Rainbow", "postalCode": "3999"}
    assert strings_of(address) == ["534 Erewhon St", "Rainbow", "3999"]
    assert strings_of(42) == []
