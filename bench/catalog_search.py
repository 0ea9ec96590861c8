"""Catalog search latency on 100,000 variants.

Seeds a throw-away PostgreSQL database (BENCH_DATABASE_URL, else DATABASE_URL when it
is PostgreSQL, else the local server at 127.0.0.1:5432) with 10,000 models of 10
variants each, then times a fixed mix of searches and filters exactly as the API
runs them: the first page (25 rows) plus the total count. Prints p50/p95 per query
and over the mix. Target: p95 under 50 ms.
"""

import os
import random
import statistics
import time

import _setup

_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
if not _url.startswith("postgres"):
    _url = "postgres://postgres@127.0.0.1:5432/postgres"
os.environ["DATABASE_URL"] = _url
_setup.setup_django()

from django.db import connection  # noqa: E402

MODELS = int(os.environ.get("BENCH_MODELS", "10000"))
VARIANTS_PER_MODEL = 10
RUNS = int(os.environ.get("BENCH_RUNS", "30"))

ADJECTIVES = ["Spiral", "Modular", "Compact", "Hexagonal", "Twisted", "Minimal", "Rugged", "Gothic", "Nordic",
              "Planetary", "Geometric", "Floating", "Magnetic", "Folding", "Stackable", "Low-poly", "Curved"]
NOUNS = ["Vase", "Desk Organiser", "Wall Hook", "Gear", "Headphone Stand", "Planter", "Cable Clip", "Lamp Shade",
         "Phone Holder", "Dice Tower", "Keychain", "Coaster", "Pen Cup", "Drawer Knob", "Bracket", "Miniature",
         "Bookend", "Whistle", "Spool Holder", "Enclosure"]
VARIANTS = ["Black", "White", "Red", "Blue", "Large", "Small", "Matte", "Silk", "Glow", "Marble"]
MATERIALS = ["PLA", "PETG", "ABS", "ASA", "TPU", "PLA-CF"]
PRINTERS = ["MK4S", "MINI", "XL", "X1C", "A1 mini", "P1S", "Adventurer 5M Pro", "Voron 2.4"]
WORDS = ["sturdy", "print-in-place", "support-free", "gift", "kitchen", "office", "garden", "toy", "decor", "tool"]

QUERIES = [
    ("one word", {"q": "vase"}),
    ("two words", {"q": "desk organiser"}),
    ("prefix", {"q": "plane"}),
    ("typo", {"q": "organsier"}),
    ("sku", {"q": "M04211-3"}),
    ("word + material", {"q": "hook", "material": "PETG"}),
    ("filters only", {"material": "PLA", "printer_model": "MK4S", "max_time_s": 3600}),
    ("no match", {"q": "zzqxj"}),
]


def seed() -> None:
    from catalog.models import Model, ModelVariant

    rng = random.Random(42)
    models = [
        Model(name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {n}",
              description=" ".join(rng.sample(WORDS, 3)))
        for n in range(MODELS)
    ]
    Model.objects.bulk_create(models, batch_size=5000)
    variants = []
    for model in models:
        for index in range(VARIANTS_PER_MODEL):
            material = rng.choice(MATERIALS)
            variant = ModelVariant(
                model=model, name=VARIANTS[index], sku=f"M{model.pk:05d}-{index}", material=material,
                filament_types=material, printer_model=rng.choice(PRINTERS),
                estimated_time_s=rng.randint(300, 20 * 3600), layer_height=rng.choice([0.12, 0.16, 0.2, 0.28]),
            )
            variant.search_document = " ".join([model.name, variant.name, variant.sku, material,
                                                variant.printer_model, model.description])
            variant.search_title = f"{model.name} {variant.name} {variant.sku}"
            variants.append(variant)
    ModelVariant.objects.bulk_create(variants, batch_size=5000)
    from catalog.search import remember_terms

    remember_terms(" ".join(ADJECTIVES + NOUNS + VARIANTS + MATERIALS + PRINTERS + WORDS))
    with connection.cursor() as cursor:
        # The same weights as catalog.services.variant_refresh_search, in one statement.
        # The same weights and normalisation as catalog.services.variant_refresh_search.
        clean = "lower(regexp_replace({}, '[^[:alnum:]]+', ' ', 'g'))"
        cursor.execute(f"""
            UPDATE catalog_modelvariant v SET search_vector =
                setweight(to_tsvector('simple', {clean.format("m.name || ' ' || v.name || ' ' || v.sku")}), 'A') ||
                setweight(to_tsvector('simple', {clean.format("v.material || ' ' || v.printer_model")}), 'B') ||
                setweight(to_tsvector('simple', {clean.format("m.description")}), 'C')
            FROM catalog_model m WHERE m.id = v.model_id
        """)
        cursor.execute("ANALYZE catalog_modelvariant")
        cursor.execute("ANALYZE catalog_model")


def run_query(params: dict) -> int:
    from catalog.selectors import VariantFilter, variant_list

    qs = variant_list(filters=VariantFilter(**params))
    page = list(qs[:25])
    qs.count()
    return len(page)


def main() -> None:
    with _setup.throwaway_database():
        started = time.perf_counter()
        seed()
        from catalog.models import ModelVariant

        print(f"database: {connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}; "
              f"seeded {ModelVariant.objects.count():,} variants in {time.perf_counter() - started:.1f} s")
        print(f"{'query':<18} {'hits':>6} {'p50 ms':>8} {'p95 ms':>8}")
        everything = []
        for label, params in QUERIES:
            hits = run_query(params)  # warm-up
            samples = _setup.timed_ms(lambda params=params: run_query(params), RUNS)
            everything.extend(samples)
            print(f"{label:<18} {hits:>6} {statistics.median(samples):>8.1f} {_setup.percentile(samples, 95):>8.1f}")
        p95 = _setup.percentile(everything, 95)
        print(f"{'whole mix':<18} {'':>6} {statistics.median(everything):>8.1f} {p95:>8.1f}   "
              f"(target p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'})")


if __name__ == "__main__":
    main()
