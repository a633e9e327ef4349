from django.contrib.syndication.views import Feed
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed

from mailinglist.merge_tags import show_with_defaults
from mailinglist.models import MailingList

FEED_LENGTH = 50


class ArchiveFeed(Feed):
    """The newest messages of a list that publishes its archive, as an Atom feed."""

    feed_type = Atom1Feed

    def get_object(self, request, mailinglist_pk):
        return get_object_or_404(MailingList, pk=mailinglist_pk, archive=True)

    def title(self, mailing_list):
        return mailing_list.name

    def subtitle(self, mailing_list):
        return mailing_list.description

    def link(self, mailing_list):
        return reverse("mailinglist:archive", kwargs={"mailinglist_pk": mailing_list.pk})

    def items(self, mailing_list):
        # Nobody in particular reads a feed: merge tags show their defaults.
        messages = mailing_list.sent_messages().order_by("-queued")[:FEED_LENGTH]
        return [show_with_defaults(message) for message in messages]

    def item_title(self, message):
        return message.subject

    def item_description(self, message):
        return message.html

    def item_link(self, message):
        return reverse(
            "mailinglist:archived_message",
            kwargs={"mailinglist_pk": message.mailing_list_id, "pk": message.pk},
        )

    def item_pubdate(self, message):
        return message.queued

    def item_updateddate(self, message):
        return message.queued
