from django.db import connection
from django.http import HttpResponse


def health(request):
    """For load balancers: 200 when this process can reach its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
