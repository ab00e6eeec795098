"""Shared web plumbing that knows tenants and their members, below the product apps.

The tenant admin site's base, request middleware, the tenant of a websocket,
and the API's authentication, permissions and throttling. It reads
``tenants`` and nothing above it.
"""
