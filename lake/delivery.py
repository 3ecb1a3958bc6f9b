"""Sending alert messages: e-mail over SMTP with STARTTLS (``smtplib``) and JSON webhooks (``urllib``).

A webhook gets ``{"text": ...}``, the body Slack's incoming webhooks and Teams' workflows accept, with the
alert's fields under ``"quicklake"``. Each send raises :class:`DeliveryError` with what went wrong;
:mod:`lake.alerts` records every attempt in ``alert_deliveries`` and never lets a failure reach the run.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from lake.errors import QuicklakeError

TIMEOUT = 20.0  # seconds: a hung server must not hold the job that triggered the alert for long
ATTACH_MAX = 2_000_000  # bytes: a larger plot is named, not attached


class DeliveryError(QuicklakeError):
    """A message could not be delivered (said in the delivery record)."""


def send_email(
    cfg: Mapping[str, Any],
    to: Sequence[str],
    subject: str,
    body: str,
    *,
    attach: str | Path | None = None,
) -> None:
    """One message to every address of ``to`` through the ``smtp_*`` settings (STARTTLS unless
    ``smtp_starttls`` is false, login if ``smtp_user`` is set); ``attach``: a PNG to attach."""
    host = str(cfg.get("smtp_host") or "")
    if not host:
        raise DeliveryError("e-mail not configured: set smtp_host (and smtp_user, smtp_password)")
    msg = EmailMessage()
    msg["From"] = str(cfg.get("smtp_from") or "quicklake@localhost")
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="quicklake")
    msg.set_content(body)
    if attach and Path(attach).is_file() and Path(attach).stat().st_size <= ATTACH_MAX:
        msg.add_attachment(
            Path(attach).read_bytes(), maintype="image", subtype="png", filename=Path(attach).name
        )
    port = int(cfg.get("smtp_port") or 587)
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
            if cfg.get("smtp_starttls", True):
                cafile = str(cfg.get("smtp_cafile") or "") or None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            if cfg.get("smtp_user"):
                smtp.login(str(cfg["smtp_user"]), str(cfg.get("smtp_password") or ""))
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException, ssl.SSLError, ValueError) as e:  # (ValueError: bad address)
        raise DeliveryError(f"SMTP {host}:{port}: {type(e).__name__}: {e}") from None


def post_webhook(url: str, text: str, fields: Mapping[str, Any] | None = None) -> None:
    """POST ``{"text": text, "quicklake": fields}`` as JSON to ``url``; a non-2xx answer is an error."""
    body = json.dumps({"text": text, "quicklake": dict(fields or {})}, default=str).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # (http(s) only: the rules check)
            resp.read()
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"webhook {url}: HTTP {e.code} {e.reason}") from None
    except (OSError, ValueError) as e:
        raise DeliveryError(f"webhook {url}: {type(e).__name__}: {e}") from None
