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
    path("account/delete/", views.account_delete, name="account_delete"),
    path("organization/data/", views.organization_data, name="organization_data"),
    path("organization/exports/", views.organization_export_request, name="organization_export_request"),
    path("organization/exports/<int:export_id>/download/", views.organization_export_download,
         name="organization_export_download"),
    path("organization/ownership/", views.ownership_transfer, name="ownership_transfer"),
    path("organization/delete/", views.organization_delete, name="organization_delete"),
]
