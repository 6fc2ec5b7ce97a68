from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from core.models import AuditScoped


class Language(models.TextChoices):
    ARABIC = "ar", _("Arabic")
    FRENCH = "fr", _("French")
    ENGLISH = "en", _("English")


class EmailUserManager(UserManager):
    """Users are identified by e-mail address; there is no username."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):  # type: ignore[override]
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AuditScoped, AbstractUser):
    """A person who logs in: a subscriber, or a member of an agency's staff."""

    audit_scope = {"agency_id": "subscriber__agency_id", "subscriber_id": "subscriber__id"}

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("e-mail address"), unique=True)
    # E.164 (+21620000001), so any spelling a subscriber types finds the same row.
    phone = models.CharField(_("phone number"), max_length=16, unique=True, null=True, blank=True)
    # For staff: the customer centers they work at, whose customers they may see
    # (accounts.selectors.staff_agency_ids). Empty for subscribers and head office.
    agencies = models.ManyToManyField("accounts.Agency", verbose_name=_("agencies"), blank=True, related_name="staff")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(phone__isnull=True) | models.Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="user_phone_e164",
            ),
        ]

    def __str__(self) -> str:
        return self.email


class Agency(AuditScoped, models.Model):
    """A customer center: where subscribers pay, ask and get their paper bills."""

    audit_scope = {"agency_id": "id"}

    code = models.CharField(_("code"), max_length=16, unique=True)
    name_ar = models.CharField(_("name (Arabic)"), max_length=120)
    name_fr = models.CharField(_("name (French)"), max_length=120)
    city = models.CharField(_("city"), max_length=80)
    address = models.TextField(_("address"))
    # E.164, shown in the country's own spelling on the agencies page.
    phone = models.CharField(_("phone number"), max_length=16, blank=True)
    # WGS 84, for the "open in my map app" link; both or neither.
    latitude = models.DecimalField(_("latitude"), max_digits=8, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    # From this day the agency prints no bills: its subscribers with a verified
    # channel get e-bills, and paper only when they ask (accounts.selectors).
    paperless_from = models.DateField(
        _("no paper bills from"),
        null=True,
        blank=True,
        help_text=_("From this day, subscribers of this agency with a verified channel get e-bills instead of paper."),
    )

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(phone="") | models.Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="agency_phone_e164",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True, longitude__isnull=True)
                # NULL would let a CHECK pass: the second half says "not null" too.
                | models.Q(
                    latitude__isnull=False,
                    longitude__isnull=False,
                    latitude__gte=-90,
                    latitude__lte=90,
                    longitude__gte=-180,
                    longitude__lte=180,
                ),
                name="agency_coordinates_valid",
                violation_error_message=_("Give both latitude and longitude in degrees, e.g. 36.8008 and 10.1800."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_fr}"

    @property
    def name(self) -> str:
        return self.name_ar if translation.get_language() == "ar" else self.name_fr


class Weekday(models.IntegerChoices):
    """ISO weekdays (`date.isoweekday()`): Monday is 1."""

    MONDAY = 1, _("Monday")
    TUESDAY = 2, _("Tuesday")
    WEDNESDAY = 3, _("Wednesday")
    THURSDAY = 4, _("Thursday")
    FRIDAY = 5, _("Friday")
    SATURDAY = 6, _("Saturday")
    SUNDAY = 7, _("Sunday")


class AgencyHours(AuditScoped, models.Model):
    """One opening of an agency in its usual week: a day with a lunch break has two."""

    audit_scope = {"agency_id": "agency_id"}

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="hours", verbose_name=_("agency"))
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["agency", "weekday", "opens"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "weekday", "opens"], name="agencyhours_unique_opening"),
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")),
                name="agencyhours_closes_after",
                violation_error_message=_("An opening must close after it opens."),
            ),
            models.CheckConstraint(condition=models.Q(weekday__gte=1, weekday__lte=7), name="agencyhours_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class AgencyHoursReduction(AuditScoped, models.Model):
    """Hours reduced, or the agency closed, for a few days (a strike, a flood, Ramadan),
    with a note for the public. It replaces the usual hours on the days the agency
    usually opens, from `starts_on` to `ends_on` included, in the operator's time zone."""

    audit_scope = {"agency_id": "agency_id"}

    agency = models.ForeignKey(
        Agency, on_delete=models.CASCADE, related_name="hours_reductions", verbose_name=_("agency")
    )
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    closed = models.BooleanField(_("closed"), default=False)
    opens = models.TimeField(_("opens"), null=True, blank=True)
    closes = models.TimeField(_("closes"), null=True, blank=True)
    note_ar = models.CharField(_("note (Arabic)"), max_length=300, blank=True)
    note_fr = models.CharField(_("note (French)"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("reduced opening hours")
        verbose_name_plural = _("reduced opening hours")
        ordering = ["agency", "-starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="agencyreduction_ends_after_start",
                violation_error_message=_("The last day cannot come before the first."),
            ),
            # Closed, with no hours; or open, with hours that make sense.
            models.CheckConstraint(
                condition=models.Q(closed=True, opens__isnull=True, closes__isnull=True)
                | models.Q(closed=False, opens__isnull=False, closes__gt=models.F("opens")),
                name="agencyreduction_closed_or_hours",
                violation_error_message=_(
                    "Either tick “closed” and leave the hours empty, or give the reduced opening and closing times."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.starts_on}–{self.ends_on}"

    @property
    def note(self) -> str:
        return self.note_ar if translation.get_language() == "ar" else self.note_fr


class Subscriber(AuditScoped, models.Model):
    """A customer of the operator, who may hold several service accounts."""

    audit_scope = {"agency_id": "agency_id", "subscriber_id": "id"}

    user = models.OneToOneField(User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="subscriber")
    full_name = models.CharField(_("full name"), max_length=160)
    # The same name in Arabic script, for the pages and bills in Arabic: a name
    # kept in Latin letters ("Mohamed Ben Salem") read oddly inside an Arabic
    # sentence. Empty: the pages in Arabic use `full_name` as it is.
    full_name_ar = models.CharField(
        _("full name in Arabic script"), max_length=160, blank=True, default="",
        # Also the database's default: raw INSERTs (the bill-run benchmark's) need not name it.
        db_default="",
        help_text=_("As the subscriber writes it in Arabic; shown on the pages and bills in Arabic."),
    )  # fmt: skip
    national_id = models.CharField(_("national id"), max_length=32, null=True, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.FRENCH
    )
    agency = models.ForeignKey(
        Agency, verbose_name=_("home agency"), on_delete=models.PROTECT, related_name="subscribers"
    )
    # Paper bills stop once a subscriber with a verified channel chooses e-bills.
    paperless = models.BooleanField(_("e-bills instead of paper"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        constraints = [
            # Optional, but one person is one subscriber when it is given.
            models.UniqueConstraint(
                fields=["national_id"],
                condition=models.Q(national_id__isnull=False),
                name="subscriber_national_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    def name_in(self, language: str | None) -> str:
        """The name to write on a page or a bill in `language`."""
        if language and language.startswith("ar") and self.full_name_ar:
            return self.full_name_ar
        return self.full_name


class ChannelKind(models.TextChoices):
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    EMAIL = "email", _("E-mail")


class ContactChannel(AuditScoped, models.Model):
    """Where a subscriber wants bills and alerts: a phone for SMS or WhatsApp, or an e-mail.

    The same address may belong to two subscribers (a family phone), so it is
    unique per subscriber only; an unverified channel receives nothing but its code.
    """

    audit_scope = {"agency_id": "subscriber__agency_id", "subscriber_id": "subscriber_id"}

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="channels", verbose_name=_("subscriber")
    )
    kind = models.CharField(_("channel"), max_length=8, choices=ChannelKind.choices)
    # E.164 for SMS and WhatsApp, a lower-case address for e-mail.
    address = models.CharField(_("address"), max_length=254)
    language = models.CharField(_("language of messages"), max_length=2, choices=Language.choices)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    wants_bills = models.BooleanField(_("bills"), default=True)
    wants_reminders = models.BooleanField(_("reminders and disconnection warnings"), default=True)
    wants_service = models.BooleanField(_("outages and appointments"), default=True)
    wants_offers = models.BooleanField(_("offers"), default=False)
    # A clerk who registered it at the counter; empty when the subscriber did.
    registered_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("registered by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact channel")
        verbose_name_plural = _("contact channels")
        ordering = ["subscriber", "kind", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "kind", "address"], name="channel_unique_per_subscriber"),
        ]
        indexes = [models.Index(fields=["address"], name="channel_address_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class ChannelVerification(AuditScoped, models.Model):
    """A one-time code sent to a channel. Only its keyed hash is stored."""

    audit_scope = {"agency_id": "channel__subscriber__agency_id", "subscriber_id": "channel__subscriber_id"}

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        USED = "used", _("Used")
        VOID = "void", _("Void")

    class Purpose(models.TextChoices):
        # Proves a new channel (notifications/verification.py).
        VERIFY = "verify", _("Verify the channel")
        # Lets a subscriber who forgot the password choose another, sent to the
        # login phone once it is a verified SMS channel (notifications/passwords.py).
        PASSWORD_RESET = "reset", _("Reset the password")

    channel = models.ForeignKey(ContactChannel, on_delete=models.CASCADE, related_name="verifications")
    # Each flow checks only its own codes: a reset code never verifies a channel.
    purpose = models.CharField(_("purpose"), max_length=8, choices=Purpose.choices, default=Purpose.VERIFY)
    # Copied so the hourly limit counts codes per address, across subscribers.
    address = models.CharField(max_length=254, db_index=True)
    code_hash = models.CharField(max_length=64)
    # The code is derived from this salt and SECRET_KEY when the message is sent
    # (notifications/verification.py): it is never stored, in the outbox or here.
    salt = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("verification code")
        verbose_name_plural = _("verification codes")
        constraints = [
            models.CheckConstraint(condition=models.Q(attempts__lte=5), name="verification_attempts_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.status}"
