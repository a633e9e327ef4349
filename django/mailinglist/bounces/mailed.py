"""Bounce reports mailed back to Mail Ape, as `manage.py process_bounce` hands them over.

The copy a report is about is found from the VERP envelope recipient it came to,
else from the delivery id or Message-ID of the original quoted in it, else from
the failed address; each failure is then recorded by reputation.record().
"""

import hashlib
import logging
import uuid

from django.conf import settings

from mailinglist import reputation
from mailinglist.bounces.reports import read_report
from mailinglist.tokens import delivery_id_for_bounce_address

logger = logging.getLogger(__name__)

SOURCE = "process_bounce"


class TamperedToken(Exception):
    pass


def act_on_mailed_report(data: bytes, envelope_recipient: str | None = None) -> int:
    """Record what the report in data says; returns how many failures were recorded."""
    report = read_report(data)
    if report.kind != "bounce" or not report.failures:
        logger.info("Mailed report ignored: %s, no failure to record", report.kind)
        return 0
    try:
        verp_delivery = delivery_named_by_verp(
            [envelope_recipient or "", *report.report_recipients]
        )
    except TamperedToken as error:
        logger.warning("Mailed report ignored: %s", error)
        return 0
    quoted = [
        *report.original_delivery_ids,
        *map(_delivery_id_in_message_id, report.original_message_ids),
    ]
    digest = hashlib.sha256(data).hexdigest()
    recorded = 0
    for failure in report.failures:
        if verp_delivery is not None and len(report.failures) == 1:
            delivery = reputation.find_delivery(verp_delivery, None)
        else:
            delivery = _find_quoted(quoted, failure.address)
        if delivery is None:
            logger.warning("Mailed report about %r matches no copy; ignored", failure.address)
            continue
        kind = reputation.kind_of_reported_failure(failure.status, failure.permanent)
        description = " ".join(part for part in (failure.status, failure.diagnostic) if part)
        key = f"{SOURCE}:{digest}:{failure.address.lower()}"
        recorded += reputation.record(
            delivery, reputation.Report(kind, SOURCE, description, key=key[:200])
        )
    return recorded


def _find_quoted(quoted: list[str | None], address: str):
    for delivery_id in quoted:
        if delivery_id and (found := reputation.find_delivery(delivery_id, address)) is not None:
            return found
    return reputation.find_delivery(None, address)


def _delivery_id_in_message_id(message_id: str) -> str | None:
    """A copy's Message-ID is <delivery id@host>."""
    local = message_id.strip("<> ").partition("@")[0]
    try:
        return str(uuid.UUID(local))
    except ValueError:
        return None


def delivery_named_by_verp(addresses: list[str]) -> uuid.UUID | None:
    """The delivery id in the first of addresses that is a VERP address of
    MAIL_APE_BOUNCE_ADDRESS; raises TamperedToken if its signature is wrong."""
    bounce_address = settings.MAIL_APE_BOUNCE_ADDRESS
    if not bounce_address:
        return None
    local, _, domain = bounce_address.lower().rpartition("@")
    for address in addresses:
        their_local, _, their_domain = address.strip().strip("<>").lower().rpartition("@")
        if their_domain != domain or not their_local.startswith(f"{local}+"):
            continue
        delivery_id = delivery_id_for_bounce_address(address)
        if delivery_id is None:
            raise TamperedToken(f"the VERP token in {address!r} does not check out")
        return delivery_id
    return None
