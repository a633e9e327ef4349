"""Pages of plain JSON arrays, with the neighbouring pages named in a Link header (RFC 8288)."""

import base64
import binascii
import json
import uuid

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from mailinglist.models import Subscriber
from mailinglist.paging import QuickCountPaginator


def positive_int_parameter(request, name, default):
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if raw.isascii() and raw.isdigit() else 0
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError({name: [_("Use a whole number from 1 up.")]})
    return value


class LinkHeaderPagination(PageNumberPagination):
    """Keeps the book's bare-array bodies; the paging travels in headers instead: the
    neighbouring pages in Link, the number of items in X-Total-Count (beyond 10,000
    subscribers an estimate, marked by X-Total-Count-Estimated: true).

    A page past the end is empty rather than 404, so that a script walking the pages
    while subscribers leave does not fail halfway.
    """

    django_paginator_class = QuickCountPaginator
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        paginator = self.count_items(queryset, request, view)
        self.page_number = positive_int_parameter(request, self.page_query_param, 1)
        if self.page_number > self.last_page_number:
            return []
        return list(paginator.page(self.page_number))

    def count_items(self, queryset, request, view):
        """A paginator of the page size asked for, having counted the items (less far in
        a search, a view whose searched is true)."""
        self.request = request
        page_size = min(
            positive_int_parameter(request, self.page_size_query_param, self.page_size),
            self.max_page_size,
        )
        paginator = self.django_paginator_class(
            queryset, page_size, searched=bool(getattr(view, "searched", False))
        )
        self.last_page_number = paginator.num_pages
        self.total_count = paginator.count
        self.total_is_exact = paginator.exact
        return paginator

    def get_paginated_response(self, data):
        headers = {"Link": self.link_header(), "X-Total-Count": str(self.total_count)}
        if not self.total_is_exact:
            headers["X-Total-Count-Estimated"] = "true"
        return Response(data, headers=headers)

    def link_header(self):
        relations = {"first": 1}
        if self.page_number > 1:
            relations["prev"] = min(self.page_number - 1, self.last_page_number)
        if self.page_number < self.last_page_number:
            relations["next"] = self.page_number + 1
        relations["last"] = self.last_page_number
        here = self.request.build_absolute_uri()
        return ", ".join(
            f'<{replace_query_param(here, self.page_query_param, number)}>; rel="{relation}"'
            for relation, number in relations.items()
        )

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "description": "Page number, from 1; follow the Link header rather than counting.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": (
                    f"Items per page: {self.page_size} unless given, at most {self.max_page_size}."
                ),
                "schema": {"type": "integer", "minimum": 1},
            },
        ]


def subscriber_cursor(subscriber) -> str:
    """Where a page of subscribers by address ends, as a ?cursor= value."""
    data = json.dumps([subscriber.email, str(subscriber.pk)], ensure_ascii=False)
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def subscribers_after(raw: str) -> tuple[str, uuid.UUID]:
    """The address and id a ?cursor= value names; ValidationError if it names none."""
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        email, pk = data
        # PostgreSQL takes no NUL in a text, nor UTF-8 a lone surrogate, which JSON can hold.
        longest = Subscriber._meta.get_field("email").max_length or 0
        if not isinstance(email, str) or len(email) > longest or "\x00" in email:
            raise ValueError(email)
        email.encode()
        return email, uuid.UUID(pk)
    except (binascii.Error, ValueError, TypeError, AttributeError, RecursionError):
        raise ValidationError(
            {"cursor": [_("Use the cursor of a Link header's next page.")]}
        ) from None


class SubscriberPagination(LinkHeaderPagination):
    """A list's subscribers by address, where a list can hold a million: the next
    page's link carries a cursor (the last address and id of this page), so that
    walking to the end of the list costs no more a page than its start; ?page= still
    reaches any page by number."""

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            self.after = None
            page = super().paginate_queryset(queryset, request, view)
            self.has_next = self.page_number < self.last_page_number
            self.last_item = page[-1] if page else None
            return page
        self.after = subscribers_after(raw)
        page_size = self.count_items(queryset, request, view).per_page
        email, pk = self.after
        table = Subscriber._meta.db_table
        # As a row comparison, the (list, email, id) index starts at the cursor; spelt
        # with OR, the query would walk the list from its start.
        later = RawSQL(  # noqa: S611
            f'("{table}"."email", "{table}"."id") > (%s, %s)',
            [email, Subscriber._meta.pk.get_db_prep_value(pk, connection)],
            output_field=BooleanField(),
        )
        rows = list(queryset.filter(later)[: page_size + 1])
        self.has_next = len(rows) > page_size
        page = rows[:page_size]
        self.last_item = page[-1] if page else None
        return page

    def link_header(self):
        here = remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)
        relations = {"first": replace_query_param(here, self.page_query_param, 1)}
        if self.after is None and self.page_number > 1:
            relations["prev"] = replace_query_param(
                here, self.page_query_param, min(self.page_number - 1, self.last_page_number)
            )
        if self.has_next and self.last_item is not None:
            relations["next"] = replace_query_param(
                remove_query_param(here, self.page_query_param),
                self.cursor_query_param,
                subscriber_cursor(self.last_item),
            )
        relations["last"] = replace_query_param(here, self.page_query_param, self.last_page_number)
        return ", ".join(f'<{url}>; rel="{relation}"' for relation, url in relations.items())

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": (
                    'Where the page starts, as the Link header\'s rel="next" gives it; '
                    "when given, page is ignored. Walking a big list by its next links "
                    "costs the same at its end as at its start."
                ),
                "schema": {"type": "string"},
            },
        ]
