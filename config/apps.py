"""The admin app with the staff console's site (a second factor for every staff login: config.admin_site)."""

from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    default_site = "config.admin_site.StaffAdminSite"
