import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str


@pytest.mark.parametrize("reader", [env_str, env_bool, env_int, env_list])
def test_a_setting_without_a_default_must_be_set(reader, monkeypatch):
    monkeypatch.delenv("MAIL_APE_TEST_SETTING", raising=False)

    with pytest.raises(ImproperlyConfigured, match="Set the MAIL_APE_TEST_SETTING"):
        reader("MAIL_APE_TEST_SETTING")


@pytest.mark.parametrize(
    ("reader", "value", "expected"),
    [
        (env_str, "plain", "plain"),
        (env_bool, " Yes ", True),
        (env_bool, "off", False),
        (env_int, "42", 42),
        (env_list, "a.example, b.example,,", ["a.example", "b.example"]),
    ],
)
def test_a_set_value_wins_over_the_default(reader, value, expected, monkeypatch):
    monkeypatch.setenv("MAIL_APE_TEST_SETTING", value)

    assert reader("MAIL_APE_TEST_SETTING", None) == expected


@pytest.mark.parametrize(("reader", "value"), [(env_bool, "maybe"), (env_int, "4.5")])
def test_a_malformed_value_is_refused_not_replaced_by_the_default(reader, value, monkeypatch):
    monkeypatch.setenv("MAIL_APE_TEST_SETTING", value)

    with pytest.raises(ImproperlyConfigured, match="MAIL_APE_TEST_SETTING must be"):
        reader("MAIL_APE_TEST_SETTING", None)


def test_a_missing_value_takes_the_default(monkeypatch):
    monkeypatch.delenv("MAIL_APE_TEST_SETTING", raising=False)

    assert env_list("MAIL_APE_TEST_SETTING", ("localhost",)) == ["localhost"]
    assert env_int("MAIL_APE_TEST_SETTING", 7) == 7
