from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.views import subscriber_or_404

from .selectors import messages_of


@login_required
def message_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(messages_of(subscriber=subscriber_or_404(request)), 20).get_page(request.GET.get("page"))
    return render(request, "notifications/message_list.html", {"page": page})
