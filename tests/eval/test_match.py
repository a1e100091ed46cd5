import pytest

from aqaa.eval.match import contains, mentions, numbers, phrase_distance, pronunciations, tokens


@pytest.mark.parametrize("text, expected", [
    ("seven plus five is twelve", [7, 5, 12]),
    ("nine times twelve is one hundred eight", [9, 12, 108]),
    ("one hundred twenty five", [125]),
    ("seven five", [7, 5]),
    ("twenty one and thirty", [21, 30]),
    ("zero times twelve is zero", [0, 12, 0]),
    ("the number after ninety nine is one hundred", [99, 100]),
    ("12 plus 3", [12, 3]),  # digits are normalised to words first
    ("no numbers here", []),
])
def test_numbers_are_read_as_spoken(text, expected):
    assert numbers(tokens(text)) == expected


def test_number_homophones_count_but_near_misses_do_not():
    assert numbers(tokens("two minus zero is to")) == [2, 0, 2]
    assert numbers(tokens("for is smaller than seven")) == [4, 7]
    assert numbers(tokens("thirty minus three")) == [30, 3]  # never read as thirteen
    assert numbers(tokens("the number after nineteen is plenty")) == [19]


def test_mentions_follow_pronunciation_in_order():
    options = {w: [w] for w in ["buy", "sell", "hot", "cold"]}
    heard = mentions(tokens("the opposite of by his cell"), options)
    assert [m.option for m in heard] == ["buy", "sell"]
    assert [m.position for m in heard] == [3, 5]


def test_multi_word_options_beat_their_first_word():
    options = {"mexico city": ["mexico city"], "new delhi": ["new delhi"], "lima": ["lima"]}
    heard = mentions(tokens("the capital of mexico is mexico city"), options)
    assert [m.option for m in heard] == ["mexico city"]
    assert mentions(tokens("it is new delhi"), options)[0].option == "new delhi"


def test_tolerance_allows_small_slips_only():
    assert contains(tokens("the opposite of quiet is lead"), "loud")  # one phone of three
    assert not contains(tokens("the capital of france is dennis"), "paris")
    assert not contains(tokens("it is the sea"), "he")  # two-phone words must match exactly
    assert phrase_distance(["sell"], ["cell"]) == 0


def test_words_missing_from_the_dictionary_get_letter_to_sound_pronunciations():
    (phones,) = pronunciations("kyiv")
    assert 2 <= len(phones) <= 6 and all(p.isupper() for p in phones)


def test_spelled_letters_match_as_letter_names():
    assert contains(tokens("ball is spelled be a l l"), "b a l l")
    assert not contains(tokens("cat is spelled c a t"), "d o g")
