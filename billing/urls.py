from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("bills/", views.bill_list, name="bill_list"),
    path("bills/<str:number>/", views.bill_detail, name="bill_detail"),
    path("bills/<str:number>/paper-copy/", views.bill_paper_copy, name="bill_paper_copy"),
    path("accounts/<str:number>/consumption/", views.consumption, name="consumption"),
    path("accounts/<str:number>/plan/", views.plan, name="plan"),
]
