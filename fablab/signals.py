"""Signals the project package sends for the domain apps to follow (they import fablab; fablab imports none of them).

- organization_deletion_requested(sender=Organization, organization): an owner asked to delete the
  organization, and the request is about to be accepted. Sent before anything is written; a receiver
  ends what it keeps outside the database for the organization (billing cancels its Stripe subscription)
  and raises an ApplicationError to refuse the deletion (nothing is deleted then, and the owner is told
  why). Receivers run in the request, so they must be quick and safe to run twice.
"""

from django.dispatch import Signal

organization_deletion_requested = Signal()
