from decimal import Decimal

from django.db import migrations

# The plans a new platform offers; the owner edits them in the admin.
DEFAULT_PLANS = [
    ("starter", "Starter", 4900, 300, Decimal("12.000"), 2, 1, 3),
    ("growth", "Growth", 14900, 1200, Decimal("10.000"), 5, 3, 10),
    ("pro", "Pro", 39900, 4000, Decimal("8.000"), 15, 10, 30),
]


def plans_create(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, name, price, minutes, overage, calls, numbers, seats in DEFAULT_PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "monthly_price_cents": price,
                "included_minutes": minutes,
                "overage_cents_per_minute": overage,
                "max_concurrent_calls": calls,
                "max_numbers": numbers,
                "max_seats": seats,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_stripe_billing")]
    operations = [migrations.RunPython(plans_create, migrations.RunPython.noop)]
