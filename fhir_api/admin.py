"""Read-only views of the FHIR store for administrators; writes go through the FHIR API."""

from django.contrib import admin

from .models import Resource


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ["resource_type", "fhir_id", "version_id", "last_updated", "deleted"]
    list_filter = ["resource_type", "deleted"]
    search_fields = ["=fhir_id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
