"""The REST API on a tenant's host: authentication, pagination, throttling and routes."""
