from django.urls import path, register_converter

from . import views
from .converters import AccountNumberConverter, BillNumberConverter

app_name = "billing"

register_converter(AccountNumberConverter, "account_number")
register_converter(BillNumberConverter, "bill_number")

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("appointments/<int:pk>/move/", views.appointment_move, name="appointment_move"),
    path("bills/", views.bill_list, name="bill_list"),
    path("bills/<bill_number:number>/", views.bill_detail, name="bill_detail"),
    path("bills/<bill_number:number>/paper-copy/", views.bill_paper_copy, name="bill_paper_copy"),
    path("bills/<bill_number:number>/pdf/", views.bill_pdf, name="bill_pdf"),
    path("accounts/<account_number:number>/consumption/", views.consumption, name="consumption"),
    path("accounts/<account_number:number>/plan/", views.plan, name="plan"),
    path("accounts/<account_number:number>/plan/change/", views.plan_change, name="plan_change"),
    path(
        "accounts/<account_number:number>/plan/changes/<int:pk>/cancel/",
        views.plan_change_cancel,
        name="plan_change_cancel",
    ),
]
