"""Included by mailinglist.urls under api/v1/, so every name is in the mailinglist namespace."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mailinglist.api import imports, reputation, views

urlpatterns = [
    path(
        "mailing-list",
        views.MailingListCreateListView.as_view(),
        name="api-mailing-list-list",
    ),
    path(
        "mailinglist/<uuid:pk>",
        views.MailingListRetrieveUpdateDestroyView.as_view(),
        name="api-mailing-list-detail",
    ),
    path(
        "mailinglist/<uuid:mailing_list_pk>/subscribers",
        views.SubscriberListCreateView.as_view(),
        name="api-subscriber-list",
    ),
    path(
        "mailinglist/<uuid:mailing_list_pk>/subscribers/export",
        views.SubscriberExportView.as_view(),
        name="api-subscriber-export",
    ),
    path(
        "mailinglist/<uuid:mailing_list_pk>/subscribers/import",
        imports.SubscriberImportCreateView.as_view(),
        name="api-subscriber-import-create",
    ),
    path(
        "import/<uuid:pk>",
        imports.SubscriberImportDetailView.as_view(),
        name="api-subscriber-import",
    ),
    path(
        "import/<uuid:pk>/errors",
        imports.SubscriberImportErrorsView.as_view(),
        name="api-subscriber-import-errors",
    ),
    path(
        "subscriber/<uuid:pk>",
        views.SubscriberRetrieveUpdateDestroyView.as_view(),
        name="api-subscriber-detail",
    ),
    path(
        "mailinglist/<uuid:mailing_list_pk>/messages",
        views.MessageListCreateView.as_view(),
        name="api-message-list",
    ),
    path("message/<uuid:pk>", views.MessageRetrieveUpdateView.as_view(), name="api-message-detail"),
    path("message/<uuid:pk>/send", views.SendMessageView.as_view(), name="api-message-send"),
    path("message/<uuid:pk>/test", views.TestMessageView.as_view(), name="api-message-test"),
    path(
        "mailinglist/<uuid:pk>/figures",
        reputation.MailingListFiguresView.as_view(),
        name="api-mailing-list-figures",
    ),
    path(
        "suppressions",
        reputation.SuppressionListCreateView.as_view(),
        name="api-suppression-list",
    ),
    path(
        "suppressions/export",
        reputation.SuppressionExportView.as_view(),
        name="api-suppression-export",
    ),
    path(
        "suppression/<uuid:pk>",
        reputation.SuppressionRetrieveDestroyView.as_view(),
        name="api-suppression-detail",
    ),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs",
        # Its script is served apart from the page, as the Content-Security-Policy requires.
        SpectacularSwaggerSplitView.as_view(
            url_name="mailinglist:api-schema", template_name="mailinglist/api_docs.html"
        ),
        name="api-docs",
    ),
    re_path(r"", views.unknown_api_path, name="api-unknown"),
]
