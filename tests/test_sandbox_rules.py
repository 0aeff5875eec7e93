import pytest
from stdnum import luhn

from channels.sandbox_rules import SUFFIXES, Behaviour, behaviour_for, make_card_number


@pytest.mark.parametrize("suffix", ["", "1", *SUFFIXES, "00", "09"])
def test_cards_are_luhn_valid_and_end_as_asked(suffix):
    for seed in range(30):
        number = make_card_number(suffix, seed=seed)
        assert len(number) == 19 and luhn.is_valid(number) and number.endswith(suffix)
        expected = SUFFIXES.get(number[-2:], Behaviour.SUCCEED)
        assert behaviour_for(number) == expected
        if not suffix:
            assert expected == Behaviour.SUCCEED


def test_bad_suffix():
    with pytest.raises(ValueError, match="suffix is at most two digits"):
        make_card_number("123")
    with pytest.raises(ValueError, match="suffix is at most two digits"):
        make_card_number("x")
