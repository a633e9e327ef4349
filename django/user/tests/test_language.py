import pytest
from django.urls import reverse
from django.utils import translation

from user.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SETTINGS = reverse("user:settings")
# A page whose labels Django's own catalogue translates.
PASSWORD_CHANGE = reverse("user:password_change")


def test_the_settings_form_offers_the_language_and_saves_it(client):
    user = UserFactory()
    client.force_login(user)

    page = client.get(SETTINGS)
    client.post(SETTINGS, {"time_zone": "Asia/Shanghai", "language": "zh-hans"})

    assert 'value="zh-hans"' in page.content.decode()
    user.refresh_from_db()
    assert user.language == "zh-hans"
    assert user.time_zone == "Asia/Shanghai"


def test_saving_the_time_zone_alone_keeps_the_language(client):
    user = UserFactory(language="zh-hans")
    client.force_login(user)

    client.post(SETTINGS, {"time_zone": "Europe/Paris"})

    user.refresh_from_db()
    assert (user.time_zone, user.language) == ("Europe/Paris", "zh-hans")


def test_an_unknown_language_is_a_form_error(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(SETTINGS, {"time_zone": "UTC", "language": "xx"})

    assert response.status_code == 200
    assert "xx" in response.content.decode()
    user.refresh_from_db()
    assert user.language == "en"


def test_pages_speak_the_owners_language(client):
    client.force_login(UserFactory(language="zh-hans"))

    response = client.get(PASSWORD_CHANGE)

    assert response.wsgi_request.LANGUAGE_CODE == "zh-hans"
    assert response["Content-Language"] == "zh-hans"
    assert "旧密码" in response.content.decode()


def test_an_english_speaking_owner_gets_english(client):
    client.force_login(UserFactory(language="en"))

    response = client.get(PASSWORD_CHANGE)

    assert response.wsgi_request.LANGUAGE_CODE == "en"
    assert "Old password" in response.content.decode()


def test_the_owners_language_does_not_outlast_their_page(client):
    client.force_login(UserFactory(language="zh-hans"))
    before = translation.get_language()

    client.get(PASSWORD_CHANGE)

    assert translation.get_language() == before
