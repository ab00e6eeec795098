"""Time tenant provisioning (median, p95 over 50 tenants) and migrate_schemas across them.

Runs against a scratch database ``voicedesk_bench`` on the configured server.
"""

from __future__ import annotations

import statistics
import time

from _django import django_setup


def main(count: int = 50) -> None:
    django_setup("voicedesk_bench")
    from django.core.management import call_command

    from tenants.models import User
    from tenants.services import tenant_create

    call_command("migrate_schemas", verbosity=0)
    call_command("platform_init", verbosity=0)
    owner = User.objects.create_user(email="bench@example.com", password="x" * 16)

    durations = []
    for index in range(count):
        started = time.perf_counter()
        tenant_create(name=f"Bench Business {index}", slug=f"bench-{index:03d}", owner=owner)
        durations.append(time.perf_counter() - started)
        if (index + 1) % 10 == 0:
            print(f"  created {index + 1}/{count} tenants", flush=True)

    started = time.perf_counter()
    call_command("migrate_schemas", verbosity=0)
    migrate_all = time.perf_counter() - started

    durations.sort()
    p95 = durations[min(len(durations) - 1, round(0.95 * len(durations)) - 1)]
    print(
        f"tenant_create over {count} tenants: median {statistics.median(durations) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {durations[-1] * 1000:.0f} ms"
    )
    print(f"migrate_schemas across {count + 2} schemas (public, template, tenants): {migrate_all:.2f} s")


if __name__ == "__main__":
    main()
