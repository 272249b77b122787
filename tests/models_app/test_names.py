import pytest
from django.core.exceptions import ValidationError

from models_app.names import name_key, validate_model_name


@pytest.mark.parametrize(
    "a,b",
    [
        ("Fraud", "fraud"),
        ("fraud", "ｆｒａｕｄ"),  # fullwidth: NFKC
        ("fraud", "frаud"),  # Cyrillic а
        ("fraud-detector", "Fraud_Detector"),
        ("fraud detector", "fraud  .detector"),
        ("ﬁnance", "finance"),  # ligature
        ("Straße", "STRASSE"),  # case folding
    ],
)
def test_look_alike_names_share_a_key(a, b):
    assert name_key(validate_model_name(a)) == name_key(validate_model_name(b))


def test_different_names_have_different_keys():
    assert name_key("fraud-v1") != name_key("fraud-v2")


@pytest.mark.parametrize(
    "bad,message",
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 101, "at most 100"),
        ("fraud\u200bdetector", "invisible"),
        ("fraud\x00", "invisible"),
        ("../etc", "Use letters"),
        ("-leading", "Use letters"),
        ("a/b", "Use letters"),
        ("<script>", "Use letters"),
    ],
)
def test_bad_names_are_refused_with_a_reason(bad, message):
    with pytest.raises(ValidationError) as e:
        validate_model_name(bad)
    assert message in " ".join(e.value.messages)


def test_display_name_is_normalised():
    assert validate_model_name("  Fraud   Detector ") == "Fraud Detector"
