import time

import pytest

from mailinglist.tests.factories import SubscriberFactory
from mailinglist.tokens import (
    TokenCheck,
    confirmation_token_generator,
    unsubscribe_token_generator,
)

pytestmark = pytest.mark.django_db


def test_a_fresh_token_names_its_subscriber_and_checks_without_a_query(
    django_assert_num_queries,
):
    subscriber = SubscriberFactory(confirmed=False)

    with django_assert_num_queries(0):
        token = confirmation_token_generator.make_token(subscriber)
        assert confirmation_token_generator.subscriber_id(token) == subscriber.pk
        assert confirmation_token_generator.check_token(subscriber, token)


def test_the_token_does_not_contain_the_primary_key():
    subscriber = SubscriberFactory(confirmed=False)

    token = confirmation_token_generator.make_token(subscriber)

    assert str(subscriber.pk) not in token
    assert subscriber.pk.hex not in token


@pytest.mark.parametrize("position", [0, 10, 25, -1])
def test_it_rejects_a_tampered_token(position):
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber)
    replacement = "A" if token[position] != "A" else "B"
    tampered = token[:position] + replacement + token[position:][1:]

    assert not confirmation_token_generator.check_token(subscriber, tampered)


def test_it_rejects_a_token_made_for_another_subscriber():
    subscriber, other = SubscriberFactory(confirmed=False), SubscriberFactory(confirmed=False)

    token = confirmation_token_generator.make_token(other)

    assert not confirmation_token_generator.check_token(subscriber, token)


@pytest.mark.parametrize("garbage", ["", "...", "abc", "a.b.c", "ü.ö.ä", "x" * 500])
def test_it_rejects_garbage(garbage):
    subscriber = SubscriberFactory(confirmed=False)

    assert confirmation_token_generator.subscriber_id(garbage) is None
    assert not confirmation_token_generator.check_token(subscriber, garbage)


def test_it_rejects_an_expired_confirmation_token(settings):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    subscriber = SubscriberFactory(confirmed=False)
    made_at = time.time() - 3601

    token = confirmation_token_generator.make_token(subscriber, now=made_at)

    assert not confirmation_token_generator.check_token(subscriber, token)
    assert confirmation_token_generator.check_token(subscriber, token, now=made_at + 10)


def test_a_confirmation_token_works_only_once():
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber)

    subscriber.confirm()

    assert not confirmation_token_generator.check_token(subscriber, token)


def test_a_used_confirmation_token_stays_used_after_an_unsubscribe():
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber)
    subscriber.confirm()

    subscriber.unsubscribe()

    assert not confirmation_token_generator.check_token(subscriber, token)
    fresh = confirmation_token_generator.make_token(subscriber)
    assert confirmation_token_generator.check_token(subscriber, fresh)


def test_tokens_are_not_interchangeable_between_purposes():
    subscriber = SubscriberFactory(confirmed=False)

    assert not unsubscribe_token_generator.check_token(
        subscriber, confirmation_token_generator.make_token(subscriber)
    )
    assert not confirmation_token_generator.check_token(
        subscriber, unsubscribe_token_generator.make_token(subscriber)
    )


def test_an_unsubscribe_token_keeps_working_after_use():
    subscriber = SubscriberFactory()
    token = unsubscribe_token_generator.make_token(subscriber, now=time.time() - 5 * 365 * 86400)

    subscriber.unsubscribe()

    assert unsubscribe_token_generator.check_token(subscriber, token)


def test_a_token_signed_with_a_rotated_key_still_works(settings):
    subscriber = SubscriberFactory()
    token = unsubscribe_token_generator.make_token(subscriber)

    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a brand new secret key that is long enough to be realistic"

    assert unsubscribe_token_generator.check_token(subscriber, token)


def test_a_used_confirmation_token_is_told_from_a_forged_one_without_a_query(
    django_assert_num_queries,
):
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber)
    subscriber.confirm()
    forged = confirmation_token_generator.make_token(subscriber)[:-1] + "x"

    with django_assert_num_queries(0):
        assert confirmation_token_generator.check(subscriber, token) is TokenCheck.USED
        assert confirmation_token_generator.check(subscriber, forged) is TokenCheck.INVALID


def test_a_used_confirmation_token_is_used_however_old(settings):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber, now=time.time() - 86400)

    subscriber.confirm()

    assert confirmation_token_generator.check(subscriber, token) is TokenCheck.USED


def test_an_old_confirmation_token_expired_and_a_tampered_old_one_is_invalid(settings):
    settings.MAIL_APE_CONFIRMATION_MAX_AGE = 3600
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber, now=time.time() - 3601)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")

    assert confirmation_token_generator.check(subscriber, token) is TokenCheck.EXPIRED
    assert confirmation_token_generator.check(subscriber, tampered) is TokenCheck.INVALID


def test_a_used_confirmation_token_of_a_subscriber_who_left_since_is_invalid():
    subscriber = SubscriberFactory(confirmed=False)
    token = confirmation_token_generator.make_token(subscriber)
    subscriber.confirm()

    subscriber.unsubscribe()

    assert confirmation_token_generator.check(subscriber, token) is TokenCheck.INVALID


def test_an_unsubscribe_token_is_never_taken_for_a_used_one():
    subscriber = SubscriberFactory(confirmed=False)
    token = unsubscribe_token_generator.make_token(subscriber)
    subscriber.confirm()

    assert confirmation_token_generator.check(subscriber, token) is TokenCheck.INVALID
    assert unsubscribe_token_generator.check(subscriber, token) is TokenCheck.VALID
