"""Name screening against sanctions / PEP lists: import a list version from CSV, screen a name (a KYC name, a
payee's name) with fuzzy matching that works for Chinese names and their pinyin, record every hit with its
score and the list version. A hit forces review: the orchestrator (withdrawals) turns it into a review.

Matching, per list name and alias: the names as written, normalised (NFKC, case, spaces and separators such as
· - . removed), compared with rapidfuzz's ratio; and their pinyin (pypinyin; Latin letters kept as they are),
compared joined (zhangsanfeng), with the surname moved last (sanfengzhang) and as sorted syllables / words, so
张三丰, 张三峰 (same sound), "Zhang San-feng" and "Sanfeng ZHANG" meet. The best score of an entry at or above
SCREENING_MATCH_THRESHOLD is a hit."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from pypinyin import lazy_pinyin
from rapidfuzz import fuzz

from config.errors import DomainError

from .models import ScreeningEntry, ScreeningHit, ScreeningList

_SEPARATORS = re.compile(r"[\s·•・.\-_'’,，、()（）]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def name_normalise(name: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", name or "").lower())


def name_syllables(name: str) -> list[str]:
    """Pinyin syllables of the Chinese characters, the Latin words as they are (lower case)."""
    words = [w for w in _SEPARATORS.split(unicodedata.normalize("NFKC", name or "").lower()) if w]
    out: list[str] = []
    for word in words:
        if _CJK.search(word):
            out.extend(s.lower() for s in lazy_pinyin(word) if s.strip())
        else:
            out.append(word)
    return out


def match_key(name: str) -> dict[str, str]:
    syllables = name_syllables(name)
    return {
        "name": name,
        "norm": name_normalise(name),
        "pinyin": "".join(syllables),
        # The given name before the surname, as Western documents write a Chinese name (Sanfeng Zhang).
        "rotated": "".join(syllables[1:] + syllables[:1]),
        "sorted": " ".join(sorted(syllables)),
    }


@dataclass(frozen=True)
class Match:
    score: float
    matched_name: str
    matched_on: str  # "name" or "pinyin"


def name_match(screened: dict[str, str], listed: dict[str, str]) -> Match:
    """How alike two names are, 0–100, and on what."""
    as_written = fuzz.ratio(screened["norm"], listed["norm"]) if screened["norm"] and listed["norm"] else 0.0
    by_sound = 0.0
    if screened["pinyin"] and listed["pinyin"]:
        by_sound = max(
            fuzz.ratio(screened["pinyin"], listed["pinyin"]),
            fuzz.ratio(screened["pinyin"], listed.get("rotated", "")),
            fuzz.ratio(screened.get("rotated", ""), listed["pinyin"]),
            fuzz.token_sort_ratio(screened["sorted"], listed["sorted"]),
        )
    if as_written >= by_sound:
        return Match(float(as_written), listed["name"], "name")
    return Match(float(by_sound), listed["name"], "pinyin")


def screening_lists_current() -> list[ScreeningList]:
    """The newest active version of each list."""
    newest: dict[str, ScreeningList] = {}
    for lst in ScreeningList.objects.filter(active=True).order_by("-imported_at", "-id"):
        newest.setdefault(lst.name, lst)
    return list(newest.values())


def screen_name(*, name: str, subject_ref: str, context: str, only_new: bool = False) -> list[ScreeningHit]:
    """Screen ``name`` against the current list versions; every entry scoring at or above the threshold is
    recorded as a hit (with the version and score) and returned. [] when no list is loaded or nothing matches.
    ``only_new``: a hit recorded before for the same subject, entry and list version is not recorded again."""
    lists = screening_lists_current()
    if not lists or not name_normalise(name):
        return []
    screened = match_key(name)
    threshold = settings.SCREENING_MATCH_THRESHOLD
    hits = []
    entries = ScreeningEntry.objects.filter(screening_list__in=lists).values_list(
        "pk", "screening_list_id", "match_keys"
    )
    for entry_id, list_id, keys in entries:
        best = max((name_match(screened, key) for key in keys), key=lambda m: m.score, default=None)
        if best is None or best.score < threshold:
            continue
        if (
            only_new
            and ScreeningHit.objects.filter(
                subject_ref=subject_ref, entry_id=entry_id, screening_list_id=list_id
            ).exists()
        ):
            continue
        hits.append(
            ScreeningHit.objects.create(
                subject_ref=subject_ref,
                context=context,
                screened_name=name[:200],
                entry_id=entry_id,
                screening_list_id=list_id,
                matched_name=best.matched_name[:200],
                matched_on=best.matched_on,
                score=Decimal(str(round(best.score, 2))),
            )
        )
    return hits


LIST_COLUMNS = ("name", "kind", "aliases", "country", "reference")


def screening_list_import(*, text: str, name: str, version: str, by: Any, source: str = "") -> ScreeningList:
    """A list version from CSV (header: name[,kind,aliases,country,reference]; kind sanction or pep, aliases
    separated by ';'). Checked whole first; the new version becomes the current one for its list name and the
    older versions are kept, inactive."""
    if not by.has_perm("compliance.add_screeninglist"):
        raise DomainError("permission_denied")
    if not name.strip() or not version.strip():
        raise DomainError("invalid_request", details={"list": "a list name and a version are required"})
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if "name" not in [h.strip() for h in reader.fieldnames or []]:
        raise DomainError("invalid_request", details={"header": "a name column is required"})
    entries = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        kind = row.get("kind") or ScreeningEntry.Kind.SANCTION
        if not row.get("name") or kind not in ScreeningEntry.Kind.values:
            raise DomainError("invalid_request", details={"line": line, "error": "a name and a known kind"})
        aliases = [a.strip() for a in re.split(r"[;|]", row.get("aliases", "")) if a.strip()]
        entries.append(
            ScreeningEntry(
                name=row["name"][:200],
                kind=kind,
                aliases=aliases,
                country=row.get("country", "")[:60],
                reference=row.get("reference", "")[:100],
                match_keys=[match_key(n) for n in [row["name"], *aliases]],
            )
        )
    if not entries:
        raise DomainError("invalid_request", details={"rows": "the list has no entries"})
    try:
        with transaction.atomic():
            ScreeningList.objects.filter(name=name.strip(), active=True).update(active=False)
            lst = ScreeningList.objects.create(
                name=name.strip(), version=version.strip(), source=source[:200], entries_count=len(entries),
                imported_by=by,
            )  # fmt: skip
            for entry in entries:
                entry.screening_list = lst
            ScreeningEntry.objects.bulk_create(entries)
    except IntegrityError:
        raise DomainError("invalid_request", details={"version": "this list version was imported already"}) from None
    return lst
