from django.contrib import admin

from mailinglist.models import MailingList, Message, Subscriber, SubscriberMessage


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created"]
    search_fields = ["name", "owner__username"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "mailing_list", "confirmed", "unsubscribed"]
    list_filter = ["confirmed"]
    search_fields = ["email"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["subject", "mailing_list", "status", "created", "started", "finished"]
    list_filter = ["status"]


@admin.register(SubscriberMessage)
class SubscriberMessageAdmin(admin.ModelAdmin):
    list_display = ["message", "subscriber", "status", "attempts", "sent"]
    list_filter = ["status"]
    raw_id_fields = ["message", "subscriber"]
