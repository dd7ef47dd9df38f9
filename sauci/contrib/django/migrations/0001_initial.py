"""The unmanaged permission holder (no table is created)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="SauCIPermissions",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "SauCI permission",
                "managed": False,
                "default_permissions": (),
                "permissions": (
                    ("view_builds", "Can view SauCI builds, logs and results"),
                    ("trigger_builds", "Can trigger SauCI builds"),
                    ("cancel_builds", "Can cancel SauCI builds"),
                    ("rerun_builds", "Can rerun SauCI builds"),
                ),
            },
        ),
    ]
