"""The electronic receipt (电子回单) of a paid withdrawal, as a one-page PDF (reportlab; the Chinese text uses the
Adobe-GB1 CID font STSong-Light, which PDF readers provide, so no font file ships with the project).

It carries what a merchant's accountant files: our order number, the channel's reference, the channel, the payee
(name and account masked), amounts, times, and a check code: an HMAC of those fields with the server's secret,
which support can recompute (``receipt_check_code``) to tell a genuine receipt from an edited one."""

from __future__ import annotations

import hashlib
import hmac
import io

from django.conf import settings
from django.utils import timezone
from reportlab.lib.pagesizes import A5, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from config.money import fen_to_yuan

from .models import Status, Withdrawal

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _mask_name(name: str) -> str:
    return name if len(name) <= 1 else name[0] + "*" * (len(name) - 1)


def receipt_fields(w: Withdrawal) -> list[tuple[str, str]]:
    """The receipt's lines, in order (label, value)."""
    account = w.payout_account
    attempt = w.current_attempt
    channel = attempt.channel_name if attempt is not None and attempt.channel_name else w.channel_code
    paid_at = timezone.localtime(w.paid_at).strftime("%Y-%m-%d %H:%M:%S") if w.paid_at else "—"
    rows = [
        ("平台订单号 Order no.", w.order_no),
        ("通道流水号 Channel reference", w.channel_reference or "—"),
        ("出款通道 Channel", channel or "—"),
        ("收款人 Payee", _mask_name(account.holder_name)),
        ("收款账户 Account", f"{account.get_kind_display()} {account.masked_number}"),
        ("提现金额 Amount", f"¥{fen_to_yuan(w.amount)} {w.currency}"),
        ("手续费 Fee", f"¥{fen_to_yuan(w.fee)}"),
        ("到账金额 Paid to payee", f"¥{fen_to_yuan(w.net_amount)}"),
        ("申请时间 Submitted", timezone.localtime(w.created_at).strftime("%Y-%m-%d %H:%M:%S")),
        ("到账时间 Paid", paid_at),
        ("状态 Status", "已到账 Paid" if w.status == Status.PAID else "已到账，后被银行退回 Paid, then returned"),
    ]
    return rows


def receipt_check_code(w: Withdrawal) -> str:
    """16 hex characters binding the receipt's fields to this server (HMAC-SHA256 with SECRET_KEY)."""
    message = "|".join(value for _, value in receipt_fields(w)).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:16].upper()


def receipt_pdf(w: Withdrawal) -> bytes:
    buffer = io.BytesIO()
    width, height = landscape(A5)
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=True)
    pdf.setTitle(f"电子回单 {w.order_no}")
    pdf.setAuthor("卡盟提现平台")
    pdf.setFont(FONT, 16)
    pdf.drawCentredString(width / 2, height - 18 * mm, "电子回单 Electronic payout receipt")
    pdf.setFont(FONT, 9)
    pdf.drawCentredString(width / 2, height - 24 * mm, "卡盟提现平台 · 提现出款凭证")
    y = height - 36 * mm
    for label, value in receipt_fields(w):
        pdf.setFont(FONT, 10)
        pdf.drawString(20 * mm, y, label)
        pdf.drawString(80 * mm, y, value)
        y -= 7 * mm
    pdf.setFont(FONT, 8)
    generated = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
    pdf.drawString(
        20 * mm, 14 * mm, f"回单校验码 Check code: {receipt_check_code(w)}    生成时间 Generated: {generated}"
    )
    pdf.drawString(20 * mm, 9 * mm, "本回单由系统生成，校验码可向客服核验。This receipt is system-generated.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
