# Plan changes (billing/plan_changes.py): the PlanChange model, the plans'
# flags for immediate changes and approval, and the proration bill line.
#
# Both plans of a change are of the change's kind, held by PostgreSQL as an
# account's plan is (0004): composite foreign keys (from_plan_id, kind) and
# (to_plan_id, kind) -> plan (id, kind). SQLite (the demo) relies on the service.

import core.models
import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


FKS = {"planchange_from_plan_kind_fk": "from_plan_id", "planchange_to_plan_kind_fk": "to_plan_id"}


def add_fks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in FKS.items():
        schema_editor.execute(
            f"ALTER TABLE billing_planchange ADD CONSTRAINT {name} FOREIGN KEY ({column}, kind) "
            "REFERENCES billing_plan (id, kind)"
        )


def drop_fks(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in FKS:
            schema_editor.execute(f"ALTER TABLE billing_planchange DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_account_credit'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='plan',
            name='allows_immediate_change',
            field=models.BooleanField(default=False, help_text='A subscriber may move to this plan at once; the monthly fee of that month is prorated by the day.', verbose_name='allows an immediate change'),
        ),
        migrations.AddField(
            model_name='plan',
            name='change_needs_approval',
            field=models.BooleanField(default=False, help_text="A move to this plan waits for a supervisor of the subscriber's agency.", verbose_name='change needs approval'),
        ),
        migrations.AlterField(
            model_name='billline',
            name='kind',
            field=models.CharField(choices=[('fixed_fee', 'Monthly fee'), ('consumption', 'Consumption'), ('overage', 'Beyond allowance'), ('fee', 'Service fee'), ('adjustment', 'Adjustment'), ('proration', 'Plan change: monthly fee by the day')], max_length=16, verbose_name='kind'),
        ),
        migrations.CreateModel(
            name='PlanChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('electricity', 'Electricity'), ('gas', 'Gas'), ('water', 'Water'), ('mobile', 'Mobile'), ('fixed_line', 'Fixed line'), ('internet', 'Internet')], max_length=16, verbose_name='kind')),
                ('mode', models.CharField(choices=[('next_period', 'From the next period'), ('immediate', 'At once')], default='next_period', max_length=12, verbose_name='when')),
                ('status', models.CharField(choices=[('pending_approval', 'Waiting for approval'), ('scheduled', 'Scheduled'), ('applied', 'Applied'), ('cancelled', 'Cancelled'), ('rejected', 'Rejected')], max_length=16, verbose_name='status')),
                ('effective_date', models.DateField(verbose_name='effective date')),
                ('requested_at', models.DateTimeField(auto_now_add=True, verbose_name='requested')),
                ('decided_at', models.DateTimeField(blank=True, null=True, verbose_name='decided')),
                ('applied_at', models.DateTimeField(blank=True, null=True, verbose_name='applied')),
                ('reason', models.TextField(blank=True, verbose_name='reason')),
                ('currency', models.CharField(max_length=3, verbose_name='currency')),
                ('proration_amount', models.DecimalField(decimal_places=3, default=Decimal('0'), max_digits=14, verbose_name='proration')),
                ('bill_period', models.DateField(blank=True, null=True, verbose_name='billed with the bill of')),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='plan_changes', to='billing.serviceaccount', verbose_name='account')),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='decided by')),
                ('from_plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.plan', verbose_name='from plan')),
                ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='requested by')),
                ('to_plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.plan', verbose_name='to plan')),
            ],
            options={
                'verbose_name': 'plan change',
                'verbose_name_plural': 'plan changes',
                'ordering': ['-requested_at'],
                'permissions': [('approve_planchange', 'Can approve or reject plan changes')],
                'indexes': [models.Index(condition=models.Q(('status', 'scheduled')), fields=['effective_date'], name='planchange_scheduled_idx'), models.Index(condition=models.Q(('bill_period__isnull', False)), fields=['bill_period', 'account'], name='planchange_bill_period_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status__in', ['pending_approval', 'scheduled'])), fields=('account',), name='planchange_one_open_per_account'), models.CheckConstraint(condition=models.Q(('from_plan', models.F('to_plan')), _negated=True), name='planchange_changes_the_plan'), models.CheckConstraint(condition=models.Q(('mode', 'immediate'), ('effective_date__day', 1), _connector='OR'), name='planchange_next_period_on_the_first'), models.CheckConstraint(condition=models.Q(models.Q(('status', 'applied'), _negated=True), ('applied_at__isnull', False), _connector='OR'), name='planchange_applied_has_when'), models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['rejected', 'cancelled']), _negated=True), ('decided_at__isnull', False), _connector='OR'), name='planchange_closed_has_when'), models.CheckConstraint(condition=models.Q(models.Q(('mode', 'immediate'), ('status', 'applied')), models.Q(('bill_period__isnull', True), ('proration_amount', 0)), _connector='OR'), name='planchange_proration_only_when_applied_at_once'), models.CheckConstraint(condition=models.Q(('bill_period__isnull', True), ('bill_period__day', 1), _connector='OR'), name='planchange_bill_period_first_day')],
            },
            bases=(core.models.AuditScoped, models.Model),
        ),
        migrations.RunPython(add_fks, drop_fks),
    ]
