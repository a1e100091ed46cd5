import pytest

from aqaa.text import number_to_words


@pytest.mark.parametrize(
    ("n", "spoken"),
    [(0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty two"), (100, "one hundred"),
     (132, "one hundred thirty two"), (1000, "one thousand"), (21005, "twenty one thousand five"),
     (2_000_000, "two million"), (1001, "one thousand one"), (110000, "one hundred ten thousand")],
)
def test_number_to_words(n, spoken):
    assert number_to_words(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"),
                                           (20, "twentieth"), (21, "twenty first"), (40, "fortieth"),
                                           (100, "one hundredth")])
def test_ordinals(n, spoken):
    assert number_to_words(n, ordinal=True) == spoken


def test_negative_numbers_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        number_to_words(-1)
