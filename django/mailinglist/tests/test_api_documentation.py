import re

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_schema_describes_every_route_of_the_api():
    response = APIClient().get(reverse("mailinglist:api-schema"))

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    prefix = "/mailinglist/api/v1/"
    assert set(schema["paths"]) == {
        prefix + "mailing-list",
        prefix + "mailinglist/{id}",
        prefix + "mailinglist/{mailing_list_pk}/subscribers",
        prefix + "mailinglist/{mailing_list_pk}/subscribers/export",
        prefix + "mailinglist/{mailing_list_pk}/subscribers/import",
        prefix + "import/{id}",
        prefix + "import/{id}/errors",
        prefix + "subscriber/{id}",
        prefix + "mailinglist/{mailing_list_pk}/messages",
        prefix + "message/{id}",
        prefix + "message/{id}/send",
        prefix + "message/{id}/test",
        prefix + "mailinglist/{id}/figures",
        prefix + "suppressions",
        prefix + "suppressions/export",
        prefix + "suppression/{id}",
    }
    assert {"basicAuth", "cookieAuth", "tokenAuth"} <= set(schema["components"]["securitySchemes"])


def test_the_interactive_docs_page_loads_the_schema_with_no_inline_script_or_style():
    client = APIClient()
    response = client.get(reverse("mailinglist:api-docs"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "<style" not in page
    assert re.findall(r"<script>", page) == []
    [script_url] = re.findall(r'<script src="([^"]+\?script=)"', page)
    assert reverse("mailinglist:api-schema") in client.get(script_url).content.decode()


def test_an_unknown_api_path_answers_json_not_a_web_page():
    response = APIClient().get("/mailinglist/api/v1/mailinglist/not-a-uuid")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_docs_page_needs_nothing_from_the_internet():
    page = APIClient().get(reverse("mailinglist:api-docs")).content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn." not in page
