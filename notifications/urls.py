"""URLs of the ``notifications`` app: include them under a path of your choice."""

from django.urls import path

from .webhooks import views

app_name = "notifications"

urlpatterns = [
    path("receipts/<str:alias>/", views.receipt, name="receipt"),
]
