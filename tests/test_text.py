import pytest

from aqaa.text import number_to_words, ordinal_words


@pytest.mark.parametrize(
    ("n", "spoken"),
    [(0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty two"), (100, "one hundred"),
     (132, "one hundred thirty two"), (1000, "one thousand"), (21005, "twenty one thousand five")],
)
def test_number_to_words(n, spoken):
    assert number_to_words(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"),
                                           (20, "twentieth"), (21, "twenty first"), (40, "fortieth")])
def test_ordinal_words(n, spoken):
    assert ordinal_words(n) == spoken


def test_number_out_of_range():
    with pytest.raises(ValueError, match="999999"):
        number_to_words(1_000_000)
