"""The staff groups and what each may do, declared once.

The data migration creates the groups; a post_migrate receiver re-applies this
policy after every `migrate`, so models added by later migrations are covered
without anyone editing group permissions by hand.
"""

ALL = ("view", "add", "change", "delete")
DOMAIN_APPS = ("catalog", "inventory", "production", "printers", "reconstruction", "billing")

# group name -> {"app_label" or "app_label.model": actions}
STAFF_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "Manager": {
        **{app: ALL for app in DOMAIN_APPS},
        "fablab.organization": ALL,
        "fablab.membership": ALL,
        "fablab.invitation": ALL,
        "fablab.apikey": ALL,
        "fablab.user": ("view", "change"),
        "fablab.auditentry": ("view",),  # append-only: nobody adds, changes or deletes entries
        "account.emailaddress": ("view", "change"),
        "django_q": ("view",),
        "django_q.schedule": ALL,
        # deleting an access attempt unlocks an account locked by failed log-ins
        "axes.accessattempt": ("view", "delete"),
        "axes.accessfailurelog": ("view",),
        "axes.accesslog": ("view",),
    },
    "Operator": {
        **{app: ("view",) for app in DOMAIN_APPS},
        "inventory": ("view", "add", "change"),
        "production": ("view", "add", "change"),
        "printers": ("view", "add", "change"),
        "reconstruction": ("view", "change"),
        "fablab.organization": ("view",),
        "fablab.membership": ("view",),
        "django_q.success": ("view",),
        "django_q.failure": ("view",),
    },
}


def allowed_actions(policy: dict[str, tuple[str, ...]], app_label: str, model: str) -> tuple[str, ...]:
    """A model's own line in the policy wins over its app's line."""
    return policy.get(f"{app_label}.{model}", policy.get(app_label, ()))


def sync_staff_groups(apps) -> None:
    """Create the staff groups and set their permissions to exactly the policy above."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, policy in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        app_labels = {target.partition(".")[0] for target in policy}
        allowed = [
            permission
            for permission in Permission.objects.filter(content_type__app_label__in=app_labels).select_related(
                "content_type"
            )
            if permission.codename.split("_", 1)[0]
            in allowed_actions(policy, permission.content_type.app_label, permission.content_type.model)
        ]
        group.permissions.set(allowed)
