from django.urls import path

from fablab import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("organization/switch/", views.organization_switch, name="organization_switch"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("invitations/", views.invitation_create, name="invitation_create"),
    path("invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("invitations/accept/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("api-keys/", views.api_key_create, name="api_key_create"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("audit-log/", views.audit_log, name="audit_log"),
]
