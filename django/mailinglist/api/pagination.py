"""Pages of plain JSON arrays, with the neighbouring pages named in a Link header (RFC 8288)."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

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
        self.request = request
        page_size = min(
            positive_int_parameter(request, self.page_size_query_param, self.page_size),
            self.max_page_size,
        )
        self.page_number = positive_int_parameter(request, self.page_query_param, 1)
        paginator = self.django_paginator_class(queryset, page_size)
        self.last_page_number = paginator.num_pages
        self.total_count = paginator.count
        self.total_is_exact = paginator.exact
        if self.page_number > self.last_page_number:
            return []
        return list(paginator.page(self.page_number))

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
