"""Forms of the merchant pages. They only parse and shape input; every rule about money lives in services."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import PayoutAccount, User

from .models import Speed
from .services import MAX_AMOUNT_FEN

_AMOUNT_RE = re.compile(r"^(\d+)(?:\.(\d*))?$", re.ASCII)


def parse_yuan(raw: str) -> int:
    """What a merchant typed in yuan ("100.50", "1,000", "１００") → exact integer fen.

    Raises ValidationError with a message that says what is wrong, never a generic one."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    text = text.removeprefix("¥").replace(",", "").replace(" ", "").removesuffix("元")
    if not text:
        raise forms.ValidationError("请输入提现金额", code="required")
    if text.startswith("-"):
        raise forms.ValidationError("提现金额不能为负数", code="negative")
    match = _AMOUNT_RE.match(text.removeprefix("+"))
    if match is None:
        raise forms.ValidationError("请输入有效的金额，例如 100.50", code="invalid")
    decimals = match.group(2) or ""
    if len(decimals) > 2:
        raise forms.ValidationError("金额最多保留两位小数（精确到分）", code="precision")
    fen = int(Decimal(f"{match.group(1)}.{decimals or '0'}") * 100)
    if fen <= 0:
        raise forms.ValidationError("提现金额必须大于 0", code="not_positive")
    if fen > MAX_AMOUNT_FEN:
        raise forms.ValidationError("提现金额过大，请核对后重新输入", code="too_large")
    return fen


class YuanAmountField(forms.CharField):
    """A yuan amount on the page, integer fen in cleaned_data."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "例如 100.00"}),
        )
        super().__init__(**kwargs)

    def clean(self, value: Any) -> int:
        return parse_yuan(value)


class MerchantAuthenticationForm(AuthenticationForm):
    """Only merchant users log in here; platform staff use the admin."""

    device = forms.CharField(required=False, widget=forms.HiddenInput)

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "用户名或密码错误",
        "inactive": "该账号已停用",
        "staff": "平台工作人员请从 /admin/ 登录",
        "no_merchant": "该账号未绑定商户，无法登录商户后台",
    }

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        if user.merchant_id is None:
            code = "staff" if user.is_staff else "no_merchant"
            raise forms.ValidationError(self.error_messages[code], code=code)


class WithdrawForm(forms.Form):
    """Step 1. ``accounts`` are the merchant's payout accounts money may be sent to right now."""

    amount = YuanAmountField(label="提现金额（元）")
    payout_account = forms.TypedChoiceField(label="收款账户", coerce=int, empty_value=None)
    speed = forms.ChoiceField(label="到账速度", choices=Speed.choices, initial=Speed.STANDARD)
    device = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, accounts: list[PayoutAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account_field = self.fields["payout_account"]
        assert isinstance(account_field, forms.TypedChoiceField)
        account_field.choices = [(a.pk, str(a)) for a in accounts]
        self.fields["payout_account"].error_messages["invalid_choice"] = "请选择一个可用的收款账户"
        self.fields["payout_account"].error_messages["required"] = "请选择收款账户"
        self.fields["speed"].error_messages["invalid_choice"] = "请选择到账速度"


class VerifyCodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="短信验证码",
        error_messages={"invalid": "验证码是 6 位数字", "required": "请输入短信验证码"},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": 6}),
    )


BANKS = [
    ("ICBC", "中国工商银行"),
    ("CCB", "中国建设银行"),
    ("ABC", "中国农业银行"),
    ("BOC", "中国银行"),
    ("BOCOM", "交通银行"),
    ("CMB", "招商银行"),
    ("PSBC", "中国邮政储蓄银行"),
    ("CIB", "兴业银行"),
    ("SPDB", "浦发银行"),
    ("CMBC", "中国民生银行"),
    ("CITIC", "中信银行"),
    ("CEB", "中国光大银行"),
    ("PAB", "平安银行"),
    ("HXB", "华夏银行"),
    ("GDB", "广发银行"),
]
BANK_NAMES = dict(BANKS)


class PayoutAccountForm(forms.Form):
    account_number = forms.CharField(
        label="银行卡号",
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "16–19 位卡号"}),
        error_messages={"required": "请输入银行卡号"},
    )
    holder_name = forms.CharField(label="持卡人姓名", max_length=100, error_messages={"required": "请输入持卡人姓名"})
    bank_code = forms.ChoiceField(label="开户银行", choices=BANKS, error_messages={"invalid_choice": "请选择开户银行"})
    make_default = forms.BooleanField(label="设为默认收款账户", required=False)
    device = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_account_number(self) -> str:
        # Spaces and dashes are how people copy card numbers; the Luhn check itself is the service's job.
        return re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", self.cleaned_data["account_number"]))
