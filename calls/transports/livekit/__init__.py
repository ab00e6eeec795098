"""LiveKit: SIP dispatch rules for numbers, the signed webhook, and the agent worker that joins each call's room.

The transport's declaration is in ``transport`` (it mounts the webhook view,
which sends Dramatiq jobs; keeping it out of this package's import keeps the
actors importable from here).
"""
