from django.core.exceptions import ValidationError


def validate_single_line(value):
    """Reject characters that would split an e-mail header or a page title."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationError("Use a single line without control characters.", code="single_line")
