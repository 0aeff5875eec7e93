"""Key material for the sandbox gateway: created on first start in the data directory, reused afterwards.

Every secret lives in its own file so an operator can drop in their own material before the first start (a
file that already exists is never overwritten). ``keys.json`` indexes the files and carries ready-made adapter
configs, so the platform's channel config can point at them.

Two sides per RSA protocol, as in production: the *platform* key pair belongs to the provider (the gateway
signs with its private half; our adapter holds only the public half), the *app/merchant* key pair is ours
(our adapter signs with the private half; the gateway holds the public half to verify).
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

BANKDIRECT_KEY_ID = "bd-sandbox-1"
ALIPAY_APP_ID = "2021000000000001"
WECHAT_MCH_ID = "1900000001"
WECHAT_APPID = "wx0000000000sandbox"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pair(private_path: Path, public_path: Path) -> rsa.RSAPrivateKey:
    if private_path.exists():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{private_path} is not an RSA private key")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(
            private_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
    if not public_path.exists():
        public_path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return key


def _secret(path: Path, length: int, alphabet: str | None = None) -> str:
    if path.exists():
        return path.read_text().strip()
    value = "".join(secrets.choice(alphabet) for _ in range(length)) if alphabet else secrets.token_hex(length)
    _write_private(path, value.encode())
    return value


def _text_id(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.write_text(make)
    return make


@dataclass(frozen=True)
class GatewayKeys:
    bankdirect_key_id: str
    bankdirect_secret: str
    alipay_app_id: str
    alipay_app_public: rsa.RSAPublicKey
    alipay_platform_private: rsa.RSAPrivateKey
    wechat_mch_id: str
    wechat_appid: str
    wechat_merchant_serial: str
    wechat_merchant_public: rsa.RSAPublicKey
    wechat_platform_private: rsa.RSAPrivateKey
    wechat_platform_key_id: str
    wechat_apiv3_key: str


def load_or_create(data_dir: Path, base_url: str) -> GatewayKeys:
    data_dir.mkdir(parents=True, exist_ok=True)
    d = data_dir
    bd_secret = _secret(d / "bankdirect_secret.txt", 32)
    alipay_app = _key_pair(d / "alipay_app_private.pem", d / "alipay_app_public.pem")
    alipay_platform = _key_pair(d / "alipay_platform_private.pem", d / "alipay_platform_public.pem")
    wx_merchant = _key_pair(d / "wechat_merchant_private.pem", d / "wechat_merchant_public.pem")
    wx_platform = _key_pair(d / "wechat_platform_private.pem", d / "wechat_platform_public.pem")
    wx_serial = _text_id(d / "wechat_merchant_serial.txt", secrets.token_hex(20).upper())
    wx_pub_id = _text_id(d / "wechat_platform_key_id.txt", "PUB_KEY_ID_" + secrets.token_hex(14).upper())
    apiv3 = _secret(d / "wechat_apiv3_key.txt", 32, string.ascii_letters + string.digits)

    keys = GatewayKeys(
        bankdirect_key_id=BANKDIRECT_KEY_ID,
        bankdirect_secret=bd_secret,
        alipay_app_id=ALIPAY_APP_ID,
        alipay_app_public=alipay_app.public_key(),
        alipay_platform_private=alipay_platform,
        wechat_mch_id=WECHAT_MCH_ID,
        wechat_appid=WECHAT_APPID,
        wechat_merchant_serial=wx_serial,
        wechat_merchant_public=wx_merchant.public_key(),
        wechat_platform_private=wx_platform,
        wechat_platform_key_id=wx_pub_id,
        wechat_apiv3_key=apiv3,
    )
    _write_index(d.resolve(), base_url, keys)
    return keys


def _write_index(d: Path, base_url: str, keys: GatewayKeys) -> None:
    """keys.json: where each secret is, plus adapter configs ready to paste (notify_url is ours to fill)."""
    index = {
        "base_url": base_url,
        "files": {
            "bankdirect_secret": str(d / "bankdirect_secret.txt"),
            "alipay_app_private_key": str(d / "alipay_app_private.pem"),
            "alipay_app_public_key": str(d / "alipay_app_public.pem"),
            "alipay_platform_private_key": str(d / "alipay_platform_private.pem"),
            "alipay_platform_public_key": str(d / "alipay_platform_public.pem"),
            "wechat_merchant_private_key": str(d / "wechat_merchant_private.pem"),
            "wechat_merchant_public_key": str(d / "wechat_merchant_public.pem"),
            "wechat_platform_private_key": str(d / "wechat_platform_private.pem"),
            "wechat_platform_public_key": str(d / "wechat_platform_public.pem"),
            "wechat_apiv3_key": str(d / "wechat_apiv3_key.txt"),
        },
        "adapters": {
            "bankdirect": {
                "base_url": f"{base_url}/bankdirect/v1",
                "key_id": keys.bankdirect_key_id,
                "secret_file": str(d / "bankdirect_secret.txt"),
                "notify_url": "",
                "timeout": 10,
            },
            "alipay": {
                "server_url": f"{base_url}/alipay/gateway.do",
                "app_id": keys.alipay_app_id,
                "app_private_key_file": str(d / "alipay_app_private.pem"),
                "alipay_public_key_file": str(d / "alipay_platform_public.pem"),
                "notify_url": "",
                "timeout": 10,
            },
            "wechat": {
                "base_url": base_url,
                "mch_id": keys.wechat_mch_id,
                "appid": keys.wechat_appid,
                "merchant_private_key_file": str(d / "wechat_merchant_private.pem"),
                "merchant_serial_no": keys.wechat_merchant_serial,
                "platform_public_key_file": str(d / "wechat_platform_public.pem"),
                "platform_public_key_id": keys.wechat_platform_key_id,
                "apiv3_key_file": str(d / "wechat_apiv3_key.txt"),
                "notify_url": "",
                "timeout": 10,
            },
        },
    }
    (d / "keys.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")
