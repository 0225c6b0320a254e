"""Forms for the MDM pages; they check shape, the mdm services check meaning."""

from django import forms

from bastion.mdm.services import IntegrationSettings, InvalidInput, validate

# The providers the guide lists; only the MobileIron ones have a connector yet.
PROVIDERS = [
    ("airwatch", "AirWatch", False),
    ("citrix", "Citrix Endpoint Management", False),
    ("maas360", "IBM MaaS360", False),
    ("intune", "Microsoft Intune", False),
    ("cloud", "MobileIron Cloud", True),
    ("core", "MobileIron Core", True),
    ("silverback", "Silverback", False),
    ("uem", "BlackBerry UEM", False),
]
AVAILABLE = {key for key, _, available in PROVIDERS if available}

# Which form field a failed connection test is about, by ConnectionReport.problem.
PROBLEM_FIELDS = {
    "bad_url": "url",
    "unreachable": "url",
    "tls": "url",
    "invalid": "url",
    "unauthorized": "password",
    "forbidden": "username",
}
PROBLEM_TITLES = {
    "bad_url": "This URL can't be used",
    "unreachable": "Nothing answered at this URL",
    "tls": "The server's certificate could not be verified",
    "invalid": "The server's answers are not those of this MDM",
    "unauthorized": "The MDM rejected this username or password",
    "forbidden": "This account lacks an API permission",
}


class ProviderForm(forms.Form):
    provider = forms.ChoiceField(choices=[(key, name) for key, name, _ in PROVIDERS])

    def clean_provider(self):
        provider = self.cleaned_data["provider"]
        if provider not in AVAILABLE:
            raise forms.ValidationError("This provider is not available yet.")
        return provider


class IntegrationForm(forms.Form):
    """The guide's setup step; also the edit form of an existing integration."""

    url = forms.CharField(
        label="URL", max_length=500, help_text="The MDM's API server, e.g. https://mdm.example.com"
    )
    username = forms.CharField(max_length=255)
    password = forms.CharField(
        max_length=255, required=False, widget=forms.PasswordInput(render_value=False)
    )
    name = forms.CharField(label="MDM name", max_length=100, help_text="Prefixes group names.")
    sync_users = forms.BooleanField(required=False, initial=True)
    set_synced_password = forms.BooleanField(required=False, label="Set synced users' password")
    synced_password = forms.CharField(
        label="Synced users' password",
        max_length=255,
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    mask_users = forms.BooleanField(required=False, label="Mask imported user information")
    email_ios = forms.BooleanField(required=False, label="Send activation email for iOS devices")
    email_android = forms.BooleanField(
        required=False, label="Send activation email for Android devices"
    )
    sync_interval_minutes = forms.IntegerField(
        label="Sync every (minutes)", min_value=15, max_value=7 * 24 * 60, initial=240
    )

    def __init__(self, *args, tenant, kind, existing=None, password_kept=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.kind = kind
        self.existing = existing
        self.password_kept = password_kept
        if existing is not None or password_kept:
            self.fields["password"].help_text = "Leave empty to keep the password already given."
        if tenant.anonymous_users:
            for name in ("email_ios", "email_android"):
                self.fields[name].disabled = True
                self.fields[name].help_text = "The tenant stores no email addresses."

    def clean(self):
        data = super().clean()
        if not data.get("password") and self.existing is None and not self.password_kept:
            self.add_error("password", "Enter the API administrator's password.")
        if self.errors:
            return data

        if data.get("set_synced_password") and not data.get("synced_password"):
            if self.existing is None or not self.existing.synced_password_hash:
                self.add_error("synced_password", "Enter the password synced users get.")
                return data
        if not data.get("set_synced_password"):
            data["synced_password"] = ""

        try:
            validate(
                self.tenant, self.settings(password=data.get("password") or "kept"), self.existing
            )
        except InvalidInput as error:
            field = error.field if error.field in self.fields else None
            self.add_error(field, error.message[:1].upper() + error.message[1:] + ".")
        return data

    def settings(self, password: str = "", **extra) -> IntegrationSettings:
        data = self.cleaned_data
        return IntegrationSettings(
            kind=self.kind,
            name=data.get("name", ""),
            url=data.get("url", ""),
            username=data.get("username", ""),
            password=password,
            sync_users=bool(data.get("sync_users")),
            synced_password=data.get("synced_password") or "",
            mask_users=bool(data.get("mask_users")),
            email_ios=bool(data.get("email_ios")),
            email_android=bool(data.get("email_android")),
            sync_interval_minutes=data.get("sync_interval_minutes"),
            **extra,
        )


class RemoveForm(forms.Form):
    undo_actions = forms.ChoiceField(
        label="MDM actions this integration applied",
        choices=[
            ("keep", "Leave them in the MDM (devices stay labelled or in their group)"),
            ("undo", "Undo them (remove the labels, reset the attributes)"),
        ],
        widget=forms.RadioSelect,
    )
    confirm_name = forms.CharField(label="Type the MDM's name to confirm", max_length=100)

    def __init__(self, *args, integration, **kwargs):
        super().__init__(*args, **kwargs)
        self.integration = integration

    def clean_confirm_name(self):
        value = self.cleaned_data["confirm_name"].strip()
        if value != self.integration.name:
            raise forms.ValidationError("This is not the MDM's name.")
        return value
