"""Errors the shared plumbing turns into answers, whichever app raised them."""


class DomainError(ValueError):
    """A change the domain refuses; the message says why, for the person who asked.

    The API answers it with 400 and the tenant admin shows it as a message;
    each app subclasses it for its own refusals (``tickets.services.TicketError``).
    """
