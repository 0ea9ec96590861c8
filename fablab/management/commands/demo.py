"""Load the demo data and print every credential. Safe to run again."""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from fablab import services
from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind
from fablab.models import ApiKey, Membership, Organization

User = get_user_model()

ADMIN = ("admin", "admin@fablab.local", "fablab-admin")
OPERATOR = ("operator", "operator@fablab.local", "fablab-operator")
CUSTOMER = ("customer", "customer@example.com", "fablab-customer")
PARTNER = ("partner", "partner@example.com", "fablab-partner")
DEMO_KEY_NAME = "Demo key"


def _user(username: str, email: str, password: str, **flags):
    user, _ = User.objects.get_or_create(username=username, defaults={"email": email, **flags})
    user.email = email
    for key, value in flags.items():
        setattr(user, key, value)
    user.set_password(password)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def _organization(name: str, kind: str, owner) -> Organization:
    organization = Organization.objects.filter(name=name, kind=kind).first()
    if organization is None:
        organization = services.organization_create(name=name, kind=kind)
    if not Membership.objects.filter(organization=organization, user=owner).exists():
        services.membership_add(organization=organization, user=owner, role=MembershipRole.OWNER)
    return organization


class Command(BaseCommand):
    help = "Create the demo users, organizations and a partner API key, and print the credentials."

    def _load(self):
        _user(*ADMIN, is_staff=True, is_superuser=True)
        operator = _user(*OPERATOR, is_staff=True)
        operator.groups.add(Group.objects.get(name="Operator"))
        customer = _user(*CUSTOMER)
        partner = _user(*PARTNER)
        customer_org = _organization("Acme Prints", OrganizationKind.CUSTOMER, customer)
        partner_org = _organization("Pixel Partners", OrganizationKind.PARTNER, partner)

        # The secret of an API key cannot be shown twice, so each run issues a fresh
        # demo key and revokes the one before.
        for old in ApiKey.objects.filter(organization=partner_org, name=DEMO_KEY_NAME, revoked_at__isnull=True):
            services.api_key_revoke(api_key=old)
        _key, raw_key = services.api_key_create(
            organization=partner_org, name=DEMO_KEY_NAME, scope=ApiKeyScope.WRITE
        )

        billing_note = self._billing(customer_org)
        catalog_note = self._catalog(partner_org)
        inventory_note = self._inventory()
        printers_note = self._printers()
        queue_note = self._queue()
        self.events_note = self._market_events()
        return (raw_key, customer_org, partner_org, catalog_note, inventory_note, printers_note, queue_note,
                billing_note)

    def handle(self, *args, **options):
        # Load everything first; e-mails it triggers (low stock) are sent on commit, so the
        # credentials below are the last thing printed.
        with transaction.atomic():
            (raw_key, customer_org, partner_org, catalog_note, inventory_note, printers_note, queue_note,
             billing_note) = self._load()

        rows = [
            ("Admin (staff, superuser)", "http://127.0.0.1:8000/admin/", ADMIN[1], ADMIN[2]),
            ("Operator (staff)", "http://127.0.0.1:8000/admin/", OPERATOR[1], OPERATOR[2]),
            (f"Customer, owner of {customer_org}", "http://127.0.0.1:8000/", CUSTOMER[1], CUSTOMER[2]),
            (f"Partner, owner of {partner_org}", "http://127.0.0.1:8000/", PARTNER[1], PARTNER[2]),
        ]
        self.stdout.write(self.style.SUCCESS("\nDemo data ready. Log in with:"))
        for role, url, email, password in rows:
            self.stdout.write(f"  {role:<34} {url:<32} {email:<24} {password}")
        self.stdout.write(f"\n  Partner API key ({partner_org}, read+write): {raw_key}")
        self.stdout.write(
            f'  Try: curl -H "X-API-Key: {raw_key}" http://127.0.0.1:8000/api/v1/organization'
        )
        self.stdout.write("  API docs: http://127.0.0.1:8000/api/v1/docs")
        self.stdout.write(f"  Catalog: {catalog_note}")
        self.stdout.write(f"  Inventory: {inventory_note}")
        self.stdout.write(f"  Printers: {printers_note}")
        self.stdout.write(f"  Print queue: {queue_note}")
        self.stdout.write(f"  Market events: {self.events_note}")
        self.stdout.write(f"  Billing: {billing_note}\n")

    DEMO_PLAN = "starter"

    def _billing(self, customer_org) -> str:
        """The demo customer gets a complimentary plan (as `billing_grant` gives one), unless it pays for one."""
        from billing import selectors as billing_selectors
        from billing import services as billing

        entitlement = billing_selectors.entitlement_get(organization=customer_org)
        if entitlement.source != "stripe":
            billing.plan_grant_by_key(organization_slug=customer_org.slug, plan_key=self.DEMO_PLAN,
                                      note="demo")
            entitlement = billing_selectors.entitlement_get(organization=customer_org)
        return (f"{customer_org} has the {entitlement.plan} plan; plans and usage at "
                "http://127.0.0.1:8000/billing/")

    def _printers(self) -> str:
        """The demo printers, and the catalog's sample files for each on its simulated SD card or USB stick.

        `serve --with-printers` runs the simulated printers with these files on their storage
        (`simulate_printers --files`); what they print is what the print queue sends them (see `_queue`).
        """
        from catalog.models import SlicedFile
        from catalog.samples import build_file, sample_models
        from printers.demo import demo_files_put, demo_printer_specs, load_demo_printers

        printers = load_demo_printers()
        # The sample files' printer (as the slicer names it) -> the model of the demo printer that prints them.
        printed_on = {"Bambu Lab X1 Carbon": "X1C", "Bambu Lab A1": "A1", "COREONE": "Core One"}
        files: dict[str, dict[str, bytes]] = {spec["model"]: {} for spec in demo_printer_specs()}
        for sample in sample_models():
            for variant in sample.variants:
                version = variant.versions[-1]  # the current version, as the catalog has it
                model = printed_on.get(version.job.printer.printer_model)
                if model not in files or version.file_name in files[model]:
                    continue
                stored = SlicedFile.objects.filter(original_name=version.file_name).order_by("-created_at").first()
                if stored is not None:
                    with stored.file.open("rb") as handle:
                        files[model][version.file_name] = handle.read()
                else:
                    files[model][version.file_name] = build_file(version).data
        for model, model_files in files.items():
            demo_files_put(model=model, files=model_files)
        return (f"{len(printers)} simulated printers with {sum(len(f) for f in files.values())} sample files on "
                "their storage; `manage.py serve --with-printers` runs them, fleet at "
                "http://127.0.0.1:8000/admin/printers/printer/fleet/")

    # The demo printer, the filament in its first slot (the simulated AMS reports the same one there) and the
    # sample variants queued for it: all fit the stock, so automatic dispatch sends them one after the other.
    QUEUE = (
        ("Demo X1 Carbon", "PLA", "#C0C0C0", ("STAND-PHONE-SILVER", "STAND-TABLET-SILVER")),
        ("Demo A1", "PLA", "#00AE42", ("CUBE-GREEN", "KEY-S-GREEN")),
        ("Demo Core One", "PLA", "#FF8000", ("CUBE-ORANGE", "KEY-S-ORANGE")),
    )

    def _queue(self) -> str:
        """A spool loaded into each demo printer, automatic dispatch on, and a few jobs queued for them.

        The queue's schedule (every minute, in the task cluster) sends each job to a free printer that
        has its filament; the print books its grams on the loaded spool and a completed one adds a unit
        of product stock. Queued once: running the demo again finds the same jobs by their keys.
        """
        from catalog.models import ModelVariant
        from inventory.models import Spool
        from printers.models import Printer
        from production import services as production
        from production.models import SpoolLoad

        queued = []
        for printer_name, material, colour, skus in self.QUEUE:
            printer = Printer.objects.filter(name=printer_name).first()
            spool = Spool.objects.filter(filament__material=material, filament__colour_hex__iexact=colour,
                                         archived_at__isnull=True).order_by("-remaining_grams", "id").first()
            if printer is None or spool is None:
                continue
            if not SpoolLoad.objects.filter(printer=printer, tray=0).exists():
                production.spool_load(printer=printer, tray=0, spool=spool)
            production.printer_station_set_auto(printer=printer, auto_dispatch=True)
            for sku in skus:
                variant = ModelVariant.objects.filter(sku=sku).select_related("current_version").first()
                if variant is None or variant.current_version is None:
                    continue
                queued.append(production.print_job_create(
                    version=variant.current_version, idempotency_key=f"demo-queue-{sku}",
                    reference=f"Demo: {printer_name}"))
        return (f"{len(queued)} jobs queued for the demo printers, sent by automatic dispatch (run "
                "`manage.py sync_schedules` once); queue at http://127.0.0.1:8000/admin/production/printjob/")

    def _inventory(self) -> str:
        """Filaments, spools, products and some history.

        The filaments fit most sample variants (material and colour within the matching
        tolerance); on purpose there is no yellow PLA (the sign's second colour) and no
        black PLA (the wall hook), so those variants cannot be printed from stock. Some
        variants also have finished units on the shelf.
        """
        import datetime
        from decimal import Decimal

        from django.utils import timezone

        from inventory import services as stock
        from inventory.models import Filament, Product, Spool

        if Filament.objects.exists():
            return f"{Spool.objects.count()} spools (already loaded)"
        shelf = stock.location_create(name="Shelf A", kind="shelf")
        self._printed_products(shelf)
        self._sales_history(shelf)
        dry_box = stock.location_create(name="Dry box 1", kind="dry_box", parent=shelf)
        for slot in range(1, 5):
            stock.location_create(name=f"AMS slot {slot}", kind="ams_slot")
        filaments = [
            # brand, material, name, colour, supplier, cost/kg, reorder level, spools (grams each)
            ("Prusament", "PLA", "Prusa Orange", "#FF8000", "Prusa Research", "24.99", 1000, [1000, 640]),
            ("Prusament", "PETG", "Prusa Orange", "#FE7F00", "Prusa Research", "27.99", 500, [1000]),
            ("Prusament", "ASA", "Prusa Orange", "#FF7E04", "Prusa Research", "32.99", 0, [850]),
            ("Bambu Lab", "PLA", "Basic Bambu Green", "#00AE42", "Bambu Lab", "19.99", 500, [1000]),
            ("Bambu Lab", "PLA", "Basic Silver", "#C0C0C0", "Bambu Lab", "19.99", 0, [720]),
            ("Bambu Lab", "PLA", "Basic Jade White", "#FFFFFF", "Bambu Lab", "19.99", 500, [300]),
            ("Sunlu", "PLA", "Turquoise", "#00C2AD", "Sunlu", "15.99", 0, [1000]),
            ("Sunlu", "SILK", "Silk Turquoise", "#02C0AE", "Sunlu", "18.99", 0, [1000]),
            ("Polymaker", "PLA", "PolyTerra Teal", "#27A59A", "Polymaker", "21.99", 0, [900]),
            ("Polymaker", "PLA", "PolyTerra Olive", "#7F8001", "Polymaker", "21.99", 0, [1000]),
            ("Polymaker", "PLA", "PolyTerra Lavender", "#8100FE", "Polymaker", "21.99", 0, [500]),
            ("Polymaker", "PLA", "PolyTerra Ocean", "#0D6385", "Polymaker", "21.99", 0, [1000]),
            ("Polymaker", "PLA", "PolyTerra Cyan", "#29B3B1", "Polymaker", "21.99", 0, [1000]),
            ("Extrudr", "PETG", "Black", "#000000", "Extrudr", "29.90", 0, [1000]),
            ("Extrudr", "PETG", "Signal Red", "#FE0000", "Extrudr", "29.90", 0, [1000]),
            ("Extrudr", "PETG", "White", "#FFFFFF", "Extrudr", "29.90", 0, [1000]),
            ("Fiberlogy", "ABS", "Pastel Lilac", "#A668DF", "Fiberlogy", "26.50", 0, [1000]),
        ]
        spools = []
        for brand, material, name, colour, supplier, cost, level, weights in filaments:
            filament = stock.filament_create(
                brand=brand, material=material, name=name, colour_hex=colour, supplier=supplier,
                cost_per_kg=Decimal(cost), reorder_threshold_g=Decimal(level), spool_weight_g=Decimal("230"),
                lead_time_days=5 if brand == "Prusament" else 12,
                purchase_url=f"https://{brand.lower().replace(' ', '')}.example/{name.lower().replace(' ', '-')}",
            )
            for n, grams in enumerate(weights):
                spools.append(stock.spool_receive(filament=filament, initial_grams=grams,
                                                  idempotency_key=f"demo-receive-{filament.pk}-{n}",
                                                  location=dry_box if material != "PLA" else shelf))
        # Three weeks of printing on the orange PLA, so the shopping list has a usage rate.
        orange = spools[0]
        for day in range(21):
            movement = stock.spool_use(spool=orange, grams_used=Decimal("12.5"),
                                       idempotency_key=f"demo-print-{day}", source_type="print_job",
                                       source_id=f"demo-{day}")
            type(movement).objects.filter(pk=movement.pk).update(
                created_at=timezone.now() - datetime.timedelta(days=day))
        rings = stock.product_create(sku="RING-25", name="Keyring rings 25 mm", kind="bought",
                                     supplier="Hardware Direct", unit_cost=Decimal("0.06"),
                                     reorder_threshold_units=100, lead_time_days=14)
        stock.product_stock_change(product=rings, location=shelf, kind="received", quantity=140,
                                   idempotency_key="demo-rings")
        for day in range(1, 11):
            stock.sale_record(product=rings, location=shelf, quantity=5, unit_price="2.50", channel="market",
                              sold_on=timezone.localdate() - datetime.timedelta(days=day),
                              idempotency_key=f"demo-sale-{day}")
        return (f"{Spool.objects.count()} spools of {Filament.objects.count()} filaments, "
                f"{Product.objects.count()} products; shopping list at "
                "http://127.0.0.1:8000/admin/inventory/filament/shopping-list/")

    def _market_events(self) -> str:
        """Last year's Christmas market, closed with its sales, and this year's coming up: its products
        recommended from last year's results, and a checklist. Made once: a second run finds them by name."""
        import datetime

        from django.utils import timezone

        from inventory.models import Product
        from production import events
        from production.models import MarketEvent

        url = "http://127.0.0.1:8000/admin/production/marketevent/"
        if MarketEvent.objects.filter(name="Christmas market").exists():
            return f"{MarketEvent.objects.count()} events (already loaded) at {url}"
        counts = (("P-KEY-S-ORANGE", 12, 3), ("P-CLIP-6-BLACK", 15, 9), ("P-COASTER-OCEAN", 5, 1))
        products = {product.sku: product for product in Product.objects.filter(sku__in=[c[0] for c in counts])}
        if not products:
            return "none (the sample products are missing)"
        today = timezone.localdate()
        last_year = today - datetime.timedelta(days=364)
        past = events.market_event_create(name="Christmas market (last year)", starts_on=last_year,
                                          ends_on=last_year + datetime.timedelta(days=1), place="Market square",
                                          stall_fee="45.00", themes=["christmas"])
        for sku, taken, returned in counts:
            if sku in products:
                events.market_event_product_set(event=past, product=products[sku], target_units=taken,
                                                taken_units=taken, returned_units=returned)
        events.market_event_close(event=past)
        start = today + datetime.timedelta(days=10)
        coming = events.market_event_create(name="Christmas market", starts_on=start,
                                            ends_on=start + datetime.timedelta(days=1), place="Market square",
                                            stall_fee="50.00", themes=["christmas"])
        events.market_event_recommend(event=coming)
        for n, text in enumerate(("Book the stall", "Print the price labels", "Pack the card reader and change")):
            item = events.market_event_checklist_add(event=coming, text=text)
            if n == 0:
                events.market_event_checklist_toggle(item=item)
        return f"last year's Christmas market with its results and this year's coming up, at {url}"

    def _printed_products(self, shelf) -> None:
        """Finished units of some sample variants, as if printed earlier."""
        from decimal import Decimal

        from catalog.models import ModelVariant
        from inventory import services as stock

        # (variant, units on the shelf, unit cost, sale price with VAT): prints of these show their margin.
        for sku, units, cost, price in (("KEY-S-ORANGE", 24, "0.35", "4.90"), ("CLIP-6-BLACK", 40, "0.20", "2.50"),
                                        ("COASTER-OCEAN", 6, "0.90", "7.90")):
            variant = ModelVariant.objects.filter(sku=sku).first()
            if variant is None:
                continue
            product = stock.product_create(sku=f"P-{sku}", name=str(variant), kind="printed", variant=variant,
                                           unit_cost=Decimal(cost), sale_price=Decimal(price),
                                           reorder_threshold_units=units // 4)
            stock.product_stock_change(product=product, location=shelf, kind="produced", quantity=units,
                                       idempotency_key=f"demo-produced-{sku}")

    def _sales_history(self, shelf) -> None:
        """Two years of weekly sales of the printed products (more before Christmas, the coasters only now and
        then), so sales velocity, restock forecasts and the books have a history to show. The units sold are
        produced first, so the shelf ends as _printed_products left it."""
        import datetime
        import random

        from django.utils import timezone

        from inventory import services as stock
        from inventory.models import Product

        rng = random.Random(2024)
        today = timezone.localdate()
        # (product, mean units per week, chance of a sale in a week)
        for sku, rate, chance in (("P-KEY-S-ORANGE", 6, 1.0), ("P-CLIP-6-BLACK", 9, 1.0), ("P-COASTER-OCEAN", 2, 0.3)):
            product = Product.objects.filter(sku=sku).first()
            if product is None:
                continue
            weeks = []
            for week in range(104, 0, -1):
                day = today - datetime.timedelta(weeks=week, days=rng.randrange(7))
                season = 2.0 if day.month == 12 or (day.month == 11 and day.day > 20) else 1.0
                growth = 1 + (104 - week) / 208  # sales grow by half over the two years
                if rng.random() < chance:
                    mean = rate * season * growth
                    weeks.append((day, max(1, round(rng.gauss(mean, mean / 4)))))
            stock.product_stock_change(product=product, location=shelf, kind="produced",
                                       quantity=sum(units for _day, units in weeks),
                                       idempotency_key=f"demo-produced-history-{sku}")
            for day, units in weeks:
                stock.sale_record(product=product, location=shelf, quantity=units, unit_price=product.sale_price,
                                  channel=rng.choice(("market", "shop", "etsy", "wholesale")), sold_on=day,
                                  idempotency_key=f"demo-history-{sku}-{day.isoformat()}")

    def _catalog(self, partner_org) -> str:
        """The sample models, variants and versions, with sliced files the project makes itself.

        Files are generated only for versions a variant does not have yet, so running the
        demo again adds nothing; the same job always gives the same bytes.
        """
        from django.core.files.base import ContentFile

        from catalog import services as catalog
        from catalog.models import Model, ModelVariant, VariantVersion
        from catalog.samples import build_file, model_picture, sample_models

        samples = sample_models()
        added = 0
        for sample in samples:
            designer = partner_org if sample.by_partner else None
            model = Model.objects.filter(name=sample.name, designer=designer).first() or catalog.model_create(
                name=sample.name, designer=designer, shared_with_partners=sample.shared, tags=sample.tags,
                description=sample.description,
            )
            if not model.images.exists():
                catalog.model_image_create(model=model, caption=sample.name, image=ContentFile(
                    model_picture(sample), name=f"{sample.variants[0].sku.lower()}.png"))
            for spec in sample.variants:
                variant = ModelVariant.objects.filter(sku=spec.sku).first() or catalog.variant_create(
                    model=model, name=spec.name, sku=spec.sku, colour=spec.colour, material=spec.material,
                    size=spec.size,
                )
                for version in spec.versions[variant.versions.count():]:
                    made = build_file(version)
                    catalog.variant_upload_sliced_file(variant=variant, upload=ContentFile(made.data, name=made.name),
                                                       change_note=version.change_note)
                    added += 1
        return (f"{len(samples)} sample models, {ModelVariant.objects.count()} variants, "
                f"{VariantVersion.objects.count()} versions ({added} files made now) at "
                "http://127.0.0.1:8000/admin/catalog/")
