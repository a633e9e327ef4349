"""Pages of a list of a million subscribers, without counting a million rows per page."""

from functools import cached_property

from django.core.paginator import Paginator


class QuickCountPaginator(Paginator):
    """A paginator that counts with the queryset's count_quickly() where it has one: an
    exact count up to a limit, an estimate above it (then exact is False)."""

    exact = True

    @cached_property
    def count(self) -> int:
        count_quickly = getattr(self.object_list, "count_quickly", None)
        if count_quickly is None:
            return super().count
        count, self.exact = count_quickly()
        return count
