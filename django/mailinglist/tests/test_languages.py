"""Mail Ape in English and Simplified Chinese: an owner's pages are in the language they
chose, a visitor's in the one their browser asks for, and the Chinese catalogue
translates every string it holds."""

import ast
import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from mailinglist.delivery.states import MessageState
from mailinglist.forms import ScheduleForm
from mailinglist.tests.factories import MailingListFactory, MessageFactory, SubscriberFactory
from user.tests.factories import PASSWORD, UserFactory

CATALOGUE = settings.LOCALE_PATHS[0] / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|\{\w+\}")


@pytest.fixture(autouse=True)
def english_afterwards():
    """A request leaves its language active in the thread; later tests expect English."""
    yield
    translation.deactivate()


@pytest.fixture
def owner(client):
    user = UserFactory(language="zh-hans")
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def english_owner(client):
    user = UserFactory(language="en")
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.mark.django_db
def test_the_new_list_page_is_in_chinese_for_an_owner_who_chose_chinese(client, owner):
    page = client.get(reverse("mailinglist:create_mailinglist")).content.decode()

    assert "<h1>新建邮件列表</h1>" in page
    assert "名称" in page
    assert ">创建</button>" in page
    assert "New mailing list" not in page


@pytest.mark.django_db
def test_the_new_list_page_stays_english_for_an_english_owner_whatever_the_browser(
    client, english_owner
):
    page = client.get(
        reverse("mailinglist:create_mailinglist"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()

    assert "<h1>New mailing list</h1>" in page
    assert "新建邮件列表" not in page


@pytest.mark.django_db
def test_a_chinese_owner_gets_form_errors_in_chinese(client, owner):
    page = client.post(reverse("mailinglist:create_mailinglist"), {"name": ""}).content.decode()

    assert "该字段是必填项。" in page


@pytest.mark.django_db
def test_the_manage_page_names_subscriber_statuses_in_chinese(client, owner):
    mailing_list = MailingListFactory(owner=owner)
    SubscriberFactory(mailing_list=mailing_list, confirmed=True)

    page = client.get(mailing_list.get_absolute_url()).content.decode()

    assert '<span class="subscriber-status">已确认</span>' in page
    assert "1 已确认 · 0 未确认 · 0 已退订 · 0 已退信" in page


@pytest.mark.django_db
def test_the_send_page_counts_recipients_in_chinese(client, owner):
    mailing_list = MailingListFactory(owner=owner, name="Banana Facts")
    SubscriberFactory(mailing_list=mailing_list, confirmed=True)
    message = MessageFactory(mailing_list=mailing_list, status=MessageState.DRAFT)

    page = client.get(
        reverse("mailinglist:send_message", kwargs={"pk": message.pk})
    ).content.decode()

    assert '的 <strong id="recipient-count">1</strong> 位已确认订阅者' in page
    assert "立即发送给 1 人" in page


@pytest.mark.django_db
def test_a_visitor_whose_browser_asks_for_chinese_gets_a_chinese_error_page(client):
    page = client.get("/no-such-page", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()

    assert "<h1>未找到页面</h1>" in page
    assert "<h1>Not found</h1>" in client.get("/no-such-page").content.decode()


def test_a_validation_message_follows_the_active_language():
    with translation.override("zh-hans"):
        form = ScheduleForm({"send_at": "2001-01-01T00:00:00"})
        assert form.errors["send_at"] == ["请选择一个将来的时间。"]
    with translation.override("en"):
        form = ScheduleForm({"send_at": "2001-01-01T00:00:00"})
        assert form.errors["send_at"] == ["Choose a time in the future."]


def catalogue_entries(path):
    """The .po file's entries after its header: each a dict of flags and of msgid,
    msgid_plural and msgstr or msgstr[N] to their texts."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry = {"flags": set()}
        key = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                entry[key] += ast.literal_eval(line)
            else:
                key, _, text = line.partition(" ")
                entry[key] = ast.literal_eval(text)
        entries.append(entry)
    return entries[1:]


def test_the_chinese_catalogue_translates_every_string_with_its_placeholders():
    entries = catalogue_entries(CATALOGUE)
    assert len(entries) > 100
    problems = []
    for entry in entries:
        placeholders = set(PLACEHOLDER.findall(entry["msgid"] + entry.get("msgid_plural", "")))
        translations = [text for key, text in entry.items() if key.startswith("msgstr")]
        if "fuzzy" in entry["flags"]:
            problems.append(f"fuzzy: {entry['msgid']}")
        if not translations or not all(translations):
            problems.append(f"untranslated: {entry['msgid']}")
        for text in translations:
            if set(PLACEHOLDER.findall(text)) != placeholders:
                problems.append(f"placeholders differ: {entry['msgid']} -> {text}")

    assert problems == []
