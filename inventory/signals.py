"""Signals the inventory app sends for other apps (production) to follow.

Sent after the transaction that recorded the change commits, once per change.

- stock_changed(sender=Spool or Filament, filament_id): the filament in stock changed: a spool of it
  was received, used, credited, weighed, adjusted or archived (its grams in stock changed), or the
  filament itself was added or edited (its material, colours, weights). `spool_id`: the spool whose grams
  changed, when one did (None otherwise).
"""

from django.dispatch import Signal

stock_changed = Signal()
