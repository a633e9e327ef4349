from django.urls import include, path

from mailinglist import export_views, public_views, reputation_views, views
from mailinglist.delivery.states import MessageTransition
from mailinglist.feeds import ArchiveFeed
from mailinglist.imports import views as import_views

app_name = "mailinglist"

urlpatterns = [
    path("", views.MailingListListView.as_view(), name="mailinglist_list"),
    path("new", views.CreateMailingListView.as_view(), name="create_mailinglist"),
    path("<uuid:pk>/delete", views.DeleteMailingListView.as_view(), name="delete_mailinglist"),
    path("<uuid:pk>/manage", views.MailingListDetailView.as_view(), name="manage_mailinglist"),
    path(
        "<uuid:pk>/settings",
        views.MailingListSettingsView.as_view(),
        name="mailinglist_settings",
    ),
    *(
        path(
            f"subscriber/<uuid:pk>/{action}",
            views.SubscriberActionView.as_view(action=action),
            name=f"{action}_subscriber",
        )
        for action in ("remove", "unsubscribe", "resend")
    ),
    path(
        "subscriber/<uuid:pk>",
        reputation_views.SubscriberDetailView.as_view(),
        name="subscriber_detail",
    ),
    path(
        "<uuid:pk>/figures",
        reputation_views.MailingListFiguresView.as_view(),
        name="mailinglist_figures",
    ),
    path("suppressions", reputation_views.SuppressionListView.as_view(), name="suppression_list"),
    path(
        "suppressions/export",
        reputation_views.ExportSuppressionsView.as_view(),
        name="export_suppressions",
    ),
    path(
        "suppression/<uuid:pk>/remove",
        reputation_views.RemoveSuppressionView.as_view(),
        name="remove_suppression",
    ),
    path(
        "<uuid:pk>/export",
        export_views.ExportSubscribersView.as_view(),
        name="export_subscribers",
    ),
    path(
        "<uuid:pk>/import",
        import_views.ImportSubscribersView.as_view(),
        name="import_subscribers",
    ),
    path("import/<uuid:pk>", import_views.SubscriberImportView.as_view(), name="subscriber_import"),
    path(
        "import/<uuid:pk>/start",
        import_views.StartImportView.as_view(),
        name="start_subscriber_import",
    ),
    path(
        "import/<uuid:pk>/progress",
        import_views.ImportProgressView.as_view(),
        name="subscriber_import_progress",
    ),
    path(
        "import/<uuid:pk>/rejections",
        import_views.ImportRejectionsView.as_view(),
        name="subscriber_import_rejections",
    ),
    path(
        "<uuid:mailinglist_pk>/message/new",
        views.CreateMessageView.as_view(),
        name="create_message",
    ),
    path("message/<uuid:pk>", views.MessageDetailView.as_view(), name="view_message"),
    path("message/<uuid:pk>/edit", views.EditMessageView.as_view(), name="edit_message"),
    path("message/<uuid:pk>/send", views.SendMessageView.as_view(), name="send_message"),
    path(
        "message/<uuid:pk>/unschedule",
        views.UnscheduleMessageView.as_view(),
        name="unschedule_message",
    ),
    path("message/<uuid:pk>/test", views.TestSendView.as_view(), name="test_message"),
    path(
        "message/<uuid:pk>/progress", views.MessageProgressView.as_view(), name="message_progress"
    ),
    path(
        "message/<uuid:pk>/timeline", views.MessageTimelineView.as_view(), name="message_timeline"
    ),
    *(
        path(
            f"message/<uuid:pk>/{control.name}",
            views.MessageControlView.as_view(control=control),
            name=views.control_url_name(control),
        )
        for control in MessageTransition.OWNER_CONTROLS
    ),
    # What subscribers and visitors see.
    path(
        "<uuid:mailinglist_pk>/subscribe",
        public_views.SubscribeToMailingListView.as_view(),
        name="subscribe",
    ),
    path(
        "<uuid:pk>/thankyou",
        public_views.SubscriberThankYouView.as_view(),
        name="subscriber_thankyou",
    ),
    path(
        "subscribe/confirmation/<str:token>",
        public_views.ConfirmSubscriptionView.as_view(),
        name="confirm_subscription",
    ),
    path("unsubscribe/<str:token>", public_views.UnsubscribeView.as_view(), name="unsubscribe"),
    path(
        "subscription/<str:token>",
        public_views.ManageSubscriptionView.as_view(),
        name="manage_subscription",
    ),
    path(
        "subscription/<str:token>/unsubscribe/<uuid:pk>",
        public_views.UnsubscribeFromOneListView.as_view(),
        name="unsubscribe_from_one_list",
    ),
    path(
        "subscription/<str:token>/unsubscribe-all",
        public_views.UnsubscribeFromAllListsView.as_view(),
        name="unsubscribe_from_all_lists",
    ),
    path(
        "subscription/<str:token>/data",
        public_views.StoredDataView.as_view(),
        name="subscription_data",
    ),
    path("<uuid:mailinglist_pk>/archive", public_views.ArchiveView.as_view(), name="archive"),
    path("<uuid:mailinglist_pk>/archive/feed", ArchiveFeed(), name="archive_feed"),
    path(
        "<uuid:mailinglist_pk>/archive/<uuid:pk>",
        public_views.ArchivedMessageView.as_view(),
        name="archived_message",
    ),
    path("view/<str:token>", public_views.ViewInBrowserView.as_view(), name="view_in_browser"),
    path("api/v1/", include("mailinglist.api.urls")),
]
