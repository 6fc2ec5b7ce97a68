"""Changes of identity and money that are never plain edits.

A login re-link (who signs in as a subscriber) and a transfer of contract (whose
account it is) are asked with a reason by one member of staff and applied only
when a supervisor of the agency approves (maker-checker; the database refuses a
request decided by the one who asked). A meter reading is corrected with a
reason, and the value it replaces is kept.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Subscriber, User
from accounts.selectors import staff_agency_ids
from core.audit import audit_bulk
from core.exceptions import ApplicationError

from .models import ChangeRequest, Consumption, ReadingCorrection, ServiceAccount


class ChangeRefused(ApplicationError):
    code = "change_refused"


def _require(*, user: User, permission: str, agency_id: int) -> None:
    agency_ids = staff_agency_ids(user)
    if not user.has_perm(permission) or (agency_ids is not None and agency_id not in agency_ids):
        raise ChangeRefused(_("You are not allowed to do this for this agency."), code="not_allowed")


def _reason_clean(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ChangeRefused(_("Give the reason for this change."), code="reason_required")
    return reason


def _create(**fields) -> ChangeRequest:  # type: ignore[no-untyped-def]
    try:
        with transaction.atomic():
            return ChangeRequest.objects.create(**fields)
    except IntegrityError:
        # The partial unique constraints: one open request per subscriber or account.
        raise ChangeRefused(
            _("A request for this is already waiting for a supervisor."), code="already_pending"
        ) from None


def subscriber_login_relink_request(
    *, subscriber: Subscriber, new_login: User, reason: str, requested_by: User
) -> ChangeRequest:
    """Ask that `subscriber` signs in with `new_login` from now on (a lost phone
    or e-mail address); the current login is disabled once approved."""
    _require(user=requested_by, permission="billing.add_changerequest", agency_id=subscriber.agency_id)
    reason = _reason_clean(reason)
    if new_login.pk == subscriber.user_id:
        raise ChangeRefused(_("This is already the subscriber's login."), code="unchanged")
    if new_login.is_staff or Subscriber.objects.filter(user=new_login).exists():
        raise ChangeRefused(_("This login belongs to someone else."), code="login_taken")
    return _create(
        kind=ChangeRequest.Kind.LOGIN_RELINK, agency_id=subscriber.agency_id, subscriber=subscriber,
        from_user_id=subscriber.user_id, to_user=new_login, reason=reason, requested_by=requested_by,
    )  # fmt: skip


def account_transfer_request(
    *, account: ServiceAccount, new_subscriber: Subscriber, reason: str, requested_by: User
) -> ChangeRequest:
    """Ask that `account` (a contract, with its history) passes to `new_subscriber`."""
    agency_id = Subscriber.objects.values_list("agency_id", flat=True).get(pk=account.subscriber_id)
    _require(user=requested_by, permission="billing.add_changerequest", agency_id=agency_id)
    reason = _reason_clean(reason)
    if new_subscriber.pk == account.subscriber_id:
        raise ChangeRefused(_("The contract already belongs to this subscriber."), code="unchanged")
    return _create(
        kind=ChangeRequest.Kind.ACCOUNT_TRANSFER, agency_id=agency_id, account=account,
        from_subscriber_id=account.subscriber_id, to_subscriber=new_subscriber, reason=reason,
        requested_by=requested_by,
    )  # fmt: skip


def _decide(*, change_request: ChangeRequest, decided_by: User, approve: bool) -> ChangeRequest:
    with transaction.atomic():
        # Locked and read again: two supervisors deciding at once, or a request
        # decided since the page was shown, change nothing twice.
        request = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
        _require(user=decided_by, permission="billing.approve_changerequest", agency_id=request.agency_id)
        if request.requested_by_id == decided_by.pk:
            raise ChangeRefused(_("The one who asked for a change cannot decide it."), code="own_request")
        if request.status != ChangeRequest.Status.PENDING:
            raise ChangeRefused(_("This request was already decided."), code="already_decided")
        if approve:
            _apply(request)
        request.status = ChangeRequest.Status.APPROVED if approve else ChangeRequest.Status.REJECTED
        request.decided_by, request.decided_at = decided_by, timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
        return request


def _apply(request: ChangeRequest) -> None:
    stale = ChangeRefused(_("The record changed since this was asked; ask again."), code="stale")
    if request.kind == ChangeRequest.Kind.LOGIN_RELINK:
        subscriber = Subscriber.objects.select_for_update().get(pk=request.subscriber_id)
        new_login = User.objects.select_for_update().get(pk=request.to_user_id)
        if subscriber.user_id != request.from_user_id or Subscriber.objects.filter(user=new_login).exists():
            raise stale
        subscriber.user = new_login
        subscriber.save(update_fields=["user"])
        # The replaced login no longer reaches anybody's bills; disabled, its
        # sessions end on their next request.
        User.objects.filter(pk=request.from_user_id).update(is_active=False)
        audit_bulk(
            model=User,
            pks=[request.from_user_id],
            changes={"is_active": [True, False]},
            # No longer anybody's login: the entry keeps whose it was.
            extra={
                "agency_id": request.agency_id,
                "subscriber_id": request.subscriber_id,
                "change_request": request.pk,
            },
        )
    else:
        account = ServiceAccount.objects.select_for_update().get(pk=request.account_id)
        if account.subscriber_id != request.from_subscriber_id:
            raise stale
        account.subscriber_id = request.to_subscriber_id
        account.save(update_fields=["subscriber"])


def change_request_approve(*, change_request: ChangeRequest, decided_by: User) -> ChangeRequest:
    return _decide(change_request=change_request, decided_by=decided_by, approve=True)


def change_request_reject(*, change_request: ChangeRequest, decided_by: User) -> ChangeRequest:
    return _decide(change_request=change_request, decided_by=decided_by, approve=False)


def reading_correct(
    *, consumption: Consumption, quantity: Decimal, meter_index: Decimal | None, reason: str, corrected_by: User
) -> ReadingCorrection:
    """Correct a reading: the consumption row takes the new values (what the next
    bill uses) and the correction keeps the values it replaced. A bill already
    issued for the period is not re-priced here."""
    agency_id = consumption.account.subscriber.agency_id
    _require(user=corrected_by, permission="billing.add_readingcorrection", agency_id=agency_id)
    reason = _reason_clean(reason)
    with transaction.atomic():
        row = Consumption.objects.select_for_update().get(pk=consumption.pk)
        if (row.quantity, row.meter_index) == (quantity, meter_index):
            raise ChangeRefused(_("The corrected reading is the same as the current one."), code="unchanged")
        correction = ReadingCorrection.objects.create(
            consumption=row, original_quantity=row.quantity, original_meter_index=row.meter_index,
            corrected_quantity=quantity, corrected_meter_index=meter_index, reason=reason,
            corrected_by=corrected_by,
        )  # fmt: skip
        row.quantity, row.meter_index = quantity, meter_index
        row.save(update_fields=["quantity", "meter_index"])
    return correction
