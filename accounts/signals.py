"""What accounts tells the apps above it, which it may not import.

`password_changed` is sent inside the transaction that changed the password
(accounts.services.user_password_set), whichever way it changed: the portal's
form, a code by SMS, an e-mail link. notifications connects to it and writes
the security notice to the outbox, so the notice commits with the password or
not at all.
"""

from __future__ import annotations

from django.dispatch import Signal

# sender: the User class; keyword `user`: the user whose password changed.
password_changed = Signal()
