from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.plans, name="plans"),
    path("subscribe/<slug:plan>/", views.subscribe_to_plan, name="subscribe"),
    path("account/", views.account, name="account"),
    path("account/devices/", views.add_device, name="add_device"),
    path("account/devices/<int:pk>/remove/", views.remove_device, name="remove_device"),
    path("inbox/", views.inbox, name="inbox"),
    path("demo/time-machine/", views.time_machine, name="time_machine"),
    path("accounts/signup/", views.sign_up, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="example_project/login.html", next_page="plans"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="plans"), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switch
    path("admin/", admin.site.urls),
    path("", include("renewals.urls")),
]
