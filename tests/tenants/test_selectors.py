from tenants.selectors import tenant_for_phone_number, tenant_list_for_user, tenant_membership_get


def test_tenant_for_phone_number_finds_the_tenant_in_any_format(tenant_a) -> None:
    assert tenant_for_phone_number(number="+15550001001") == tenant_a.tenant
    assert tenant_for_phone_number(number="555-000-1001") == tenant_a.tenant


def test_tenant_for_phone_number_unknown_or_garbage_is_none(db) -> None:
    assert tenant_for_phone_number(number="+15559999999") is None
    assert tenant_for_phone_number(number="not a number") is None


def test_memberships_only_reach_own_tenants(tenant_a, tenant_b) -> None:
    assert tenant_membership_get(user=tenant_a.owner, tenant=tenant_a.tenant).role == "owner"
    assert tenant_membership_get(user=tenant_a.owner, tenant=tenant_b.tenant) is None
    assert list(tenant_list_for_user(user=tenant_a.owner)) == [tenant_a.tenant]
