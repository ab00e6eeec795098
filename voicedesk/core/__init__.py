"""The bottom layer: plumbing every app uses and that knows none of them.

Tenancy helpers on the connection, Dramatiq tenancy, live-update events, htmx
and time formatting helpers, logging, health checks and the API's base parts
(CSV export, filters, parameters, pagination, the error format). Nothing here
imports an app; import-linter holds that.
"""
