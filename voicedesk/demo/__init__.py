"""Demo data for the demo business: a month of calls, the tickets they made and the team's work on them.

``manage.py seed_demo`` calls :func:`demo_data_build` so that every page of the
demo tenant has something real to show: call history with transcripts, turn
latencies and a few recordings, tickets in every status with their activity
log, a callback queue with overdue and claimed items, unanswered questions
(some already turned into FAQ entries) and metered usage.

How it is made, so the data is the product's own and not a look-alike:

- Calls are written as the call pipeline writes them: the call row, one
  utterance per turn (greeting, reason, name, number, read-back, confirmation,
  goodbye), one latency row per agent reply, and the captured outcome with
  the pipeline's own summary. Tickets then come from
  ``tickets.services.ticket_create_from_call``, so their fields, callbacks and
  unanswered questions are the real thing; usage comes from ``billing.services``.
- The team's work (assignments, callback attempts, notes, status changes,
  FAQ answers) goes through the same services the pages use.
- The story is planned over 30 days and played back in time order; steps
  that would lie in the future are left out, which is what makes recent
  tickets new and old ones closed. The services that work with times take
  the story's time as their clock (``now=``): tickets, their SLA and
  callback due times and callback attempts and reschedules are the story's
  own. What the database stamps on insert (``created_at`` columns) is the
  real time; afterwards every time stamped while a step ran is set, with
  ``QuerySet.update``, to the moment that step happens in the story. Status
  changes still run on the real clock, so a ticket's time waiting on the
  customer or on parts is not given back to its SLA (at the real resume time
  the story's due time has long passed): every ticket is due its SLA after
  its start, as its activity log says.
- Recordings are stereo WAVs (caller left, agent right, 8 kHz, as the
  pipeline records them) spoken by espeak-ng; the utterance times of those
  calls are the audio's own, so "play from here" lands on the words.

Deterministic (a fixed plan and a seeded random generator; times are relative
to ``now``) and idempotent: nothing is added to a tenant that has calls.
"""
