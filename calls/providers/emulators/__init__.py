"""Loopback servers that speak the cloud speech vendors' wire protocols.

Each listens on 127.0.0.1, is driven by the vendor's official SDK exactly as
production drives the vendor, and hears or speaks real audio with the
offline engines. Faults on demand (``fault``) let tests and demos see a
vendor drop, stall, refuse a key or answer 5xx.
"""
