"""Documents the error answers every operation can give, so clients can expect them."""

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "`detail` explains a request-wide problem; any other key names a field "
        "and lists what is wrong with it."
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

LINK_HEADER = {
    "Link": {
        "description": 'RFC 8288 links to the "first", "prev", "next" and "last" pages.',
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": (
            "How many items there are on all pages together; above 10,000 subscribers an estimate."
        ),
        "schema": {"type": "integer"},
    },
    "X-Total-Count-Estimated": {
        "description": '"true" when X-Total-Count is an estimate.',
        "schema": {"type": "string"},
    },
}
# POST on a list's subscribers takes one subscriber, or an array of up to this many.
MAX_BULK_SUBSCRIBERS = 1000


def error(description, headers=None):
    answer = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


COMMON_ERRORS = {
    "401": error(
        "No credentials, or wrong ones.",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "403": error("Session authentication without a valid CSRF token."),
    "406": error("The Accept header asks for something other than JSON."),
    "429": error(
        "Too many requests; try again after Retry-After seconds.",
        {"Retry-After": {"schema": {"type": "integer"}}},
    ),
}


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation["responses"]
            responses.update(COMMON_ERRORS)
            if "{" in path:
                responses["404"] = error("Not found, or not yours.")
            if path.startswith("/mailinglist/api/v1/message/") and method != "get":
                responses["409"] = error("The message went out already.")
            if method in {"post", "put", "patch"}:
                responses["400"] = error("Malformed JSON or invalid fields.")
                responses["413"] = error("The body is larger than 2.5 MB.")
                responses["415"] = error("The body is not application/json.")
            parameters = {parameter["name"] for parameter in operation.get("parameters", [])}
            if "status" in parameters:
                responses["400"] = error("A query parameter has a value the operation lacks.")
            if "page" in parameters:
                responses["200"]["headers"] = LINK_HEADER
                responses["400"] = error(
                    "page or page_size is not a whole number from 1 up, or a filter is unknown."
                )
            if path.endswith("/subscribers") and method == "post":
                accept_an_array_too(operation)
    return result


def accept_an_array_too(operation):
    """The request body is one subscriber, or an array of them."""
    for media in operation["requestBody"]["content"].values():
        one = media["schema"]
        media["schema"] = {
            "oneOf": [
                one,
                {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_BULK_SUBSCRIBERS},
            ]
        }
