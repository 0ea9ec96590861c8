"""Ranked keyword search over variants, on PostgreSQL and, more simply, on SQLite.

Every word of a query must match (by its beginning) a word of the variant's search
text: model and variant names, SKU, tags, category, material, printer, slicer and
description. A query word that matches no known word at all is first corrected to
the most similar word the catalog knows (SearchTerm), so "organsier" still finds
"Organiser".

PostgreSQL: a weighted tsvector per variant (names and SKU weigh most, then tags,
category, material and printer, then the description), GIN-indexed, ranked by
ts_rank; corrections by trigram similarity over the GIN-indexed term list.
SQLite: substring matching, names first; corrections with difflib.
"""

import difflib
import re

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, TrigramSimilarity
from django.db import connection
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When

# Split like PostgreSQL's 'simple' parser does for our purposes: runs of letters/digits.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
SEARCH_CONFIG = "simple"  # names are English, German and product codes: no stemming
MIN_SIMILARITY = 0.3
MAX_WORDS = 12


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces: 'GEAR-1' and 'gear 1' index alike."""
    return " ".join(_TOKEN.findall((text or "").lower()))


def words(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())[:MAX_WORDS]


def vector_for(weighted: dict[str, str]):
    """A tsvector expression from {'A': text, 'B': text, ...}."""
    vector = None
    for weight, text in weighted.items():
        part = SearchVector(Value(normalise(text)), weight=weight, config=SEARCH_CONFIG)
        vector = part if vector is None else vector + part
    return vector


def remember_terms(text: str) -> None:
    from catalog.models import SearchTerm

    terms = {w[:60] for w in normalise(text).split() if len(w) >= 3 and not w.isdigit()}
    if terms:
        SearchTerm.objects.bulk_create([SearchTerm(word=w) for w in terms], ignore_conflicts=True)


def _known(token: str) -> bool:
    from catalog.models import SearchTerm

    return len(token) < 4 or token.isdigit() or SearchTerm.objects.filter(word__startswith=token).exists()


def correct(token: str) -> str:
    """The catalog's closest word to an unknown `token`, or the token itself."""
    from catalog.models import SearchTerm

    if _known(token):
        return token
    if is_postgres():
        best = (
            SearchTerm.objects.filter(word__trigram_similar=token)
            .annotate(similarity=TrigramSimilarity("word", token))
            .filter(similarity__gte=MIN_SIMILARITY)
            .order_by("-similarity", "word")
            .values_list("word", flat=True)
            .first()
        )
        return best or token
    candidates = SearchTerm.objects.filter(word__startswith=token[:1]).values_list("word", flat=True)[:20000]
    close = difflib.get_close_matches(token, list(candidates), n=1, cutoff=0.75)
    return close[0] if close else token


def search(queryset: QuerySet, query: str) -> QuerySet:
    """Filter `queryset` (of ModelVariant) to matches of `query`, best first, as `rank`."""
    tokens = [correct(token) for token in words(query)]
    if not tokens:
        return queryset
    if is_postgres():
        tsquery = SearchQuery(" & ".join(f"{t}:*" for t in tokens), search_type="raw", config=SEARCH_CONFIG)
        return (
            queryset.filter(search_vector=tsquery)
            .annotate(rank=SearchRank(F("search_vector"), tsquery))
            .order_by("-rank", "search_title")
        )
    condition = Q()
    name_hits = []
    for token in tokens:
        condition &= Q(search_document__icontains=token)
        name_hits.append(When(Q(search_title__icontains=token), then=Value(1)))
    rank = sum((Case(hit, default=Value(0), output_field=IntegerField()) for hit in name_hits), Value(0))
    return queryset.filter(condition).annotate(rank=rank).order_by("-rank", "search_title")
