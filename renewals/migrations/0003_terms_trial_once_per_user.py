from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("renewals", "0002_notice_engine"),
    ]

    operations = [
        migrations.AddField(
            model_name="renewalterms",
            name="trial_once_per_user",
            field=models.BooleanField(
                default=True,
                help_text="A user who already had a free trial of this service gets none again.",
                verbose_name="free trial once per user",
            ),
        ),
    ]
