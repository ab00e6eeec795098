from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Businesses sign up on the public site; a tenant host only signs in.
        tenant = getattr(request, "tenant", None)
        return tenant is None or tenant.schema_name == "public"
