"""Pages of a list of a million subscribers, without counting a million rows per page."""

from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import QuerySet

from mailinglist.models import EXACT_COUNT_LIMIT

# A search of a big list can match a hundred thousand addresses, which take longer to
# count than the page itself takes to find; beyond this many it is counted roughly.
SEARCH_EXACT_COUNT_LIMIT = 1_000


class QuickCountPaginator(Paginator):
    """A paginator that counts with the queryset's count_quickly() where it has one: an
    exact count up to a limit (lower for a search), an estimate above it (then exact is
    False), or takes a count the caller has already made as known_count, (count, exact).

    A later page of a queryset is found by its primary keys first, then its rows (a
    deferred join): skipping half a million entries of an index that holds the keys
    costs a fraction of skipping as many rows. The first page skips nothing, and is
    quicker read straight.
    """

    def __init__(
        self,
        object_list,
        per_page,
        *,
        searched: bool = False,
        known_count: tuple[int, bool] | None = None,
        **kwargs,
    ):
        super().__init__(object_list, per_page, **kwargs)
        self.exact_up_to = SEARCH_EXACT_COUNT_LIMIT if searched else EXACT_COUNT_LIMIT
        self.known_count = known_count
        self.exact = True

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            count, self.exact = self.known_count
            return count
        count_quickly = getattr(self.object_list, "count_quickly", None)
        if count_quickly is None:
            return super().count
        count, self.exact = count_quickly(self.exact_up_to)
        return count

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self.rows(bottom, top), number, self)

    def rows(self, bottom: int, top: int):
        if not isinstance(self.object_list, QuerySet) or bottom == 0:
            return self.object_list[bottom:top]
        keys = self.object_list.values("pk")[bottom:top]
        return self.object_list.filter(pk__in=keys)
