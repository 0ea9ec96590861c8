from django.urls import path

from reconstruction import views

app_name = "scans"

urlpatterns = [
    path("", views.scan_list, name="list"),
    path("marker-sheet.pdf", views.marker_sheet, name="marker_sheet"),
    path("<int:job_id>/", views.scan_detail, name="detail"),
    path("<int:job_id>/status/", views.scan_status, name="status"),
    path("<int:job_id>/photos/", views.photo_upload, name="photo_upload"),
    path("<int:job_id>/submit/", views.scan_submit, name="submit"),
    path("<int:job_id>/cancel/", views.scan_cancel, name="cancel"),
    path("<int:job_id>/delete/", views.scan_delete, name="delete"),
    path("<int:job_id>/download/<str:kind>/", views.scan_download, name="download"),
]
