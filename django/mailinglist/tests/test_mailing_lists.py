import pytest
from django.urls import reverse

from mailinglist.models import MailingList
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


def test_creating_a_list_leads_to_its_manage_page_with_the_subscribe_link(client, owner):
    response = client.post(reverse("mailinglist:create_mailinglist"), {"name": "Banana Facts"})

    mailing_list = MailingList.objects.get()
    assert mailing_list.owner == owner
    assert response.url == mailing_list.get_absolute_url()
    page = client.get(response.url).content.decode()
    subscribe_path = reverse("mailinglist:subscribe", kwargs={"mailinglist_pk": mailing_list.pk})
    assert f"http://testserver{subscribe_path}" in page


@pytest.mark.parametrize("name", ["", "x" * 141, "two\nlines"])
def test_it_rejects_a_bad_name_with_a_form_error(client, owner, name):
    response = client.post(reverse("mailinglist:create_mailinglist"), {"name": name})

    assert response.status_code == 200
    assert b"invalid-feedback" in response.content
    assert not MailingList.objects.exists()


def test_the_manage_page_shows_messages_and_subscribers_confirmed_or_not(client, owner):
    mailing_list = MailingListFactory(owner=owner)
    SubscriberFactory(mailing_list=mailing_list, email="yes@example.com")
    SubscriberFactory(mailing_list=mailing_list, email="maybe@example.com", confirmed=False)
    MessageFactory(mailing_list=mailing_list, subject="Ripe today")

    page = client.get(mailing_list.get_absolute_url()).content.decode()

    assert "yes@example.com" in page
    assert "maybe@example.com" in page
    assert "unconfirmed" in page
    assert "Ripe today" in page
    assert "1 confirmed of 2" in page


def test_deleting_asks_first_then_deletes(client, owner):
    mailing_list = MailingListFactory(owner=owner)
    url = reverse("mailinglist:delete_mailinglist", kwargs={"pk": mailing_list.pk})

    assert client.get(url).status_code == 200
    assert MailingList.objects.exists()

    response = client.post(url)

    assert response.url == reverse("mailinglist:mailinglist_list")
    assert not MailingList.objects.exists()
