from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("subscribe/<slug:plan_key>/", views.checkout, name="checkout"),
    path("subscribed/", views.checkout_done, name="checkout_done"),
    path("manage/", views.manage, name="manage"),
]
