from django.db import migrations


def create_homepage(apps, schema_editor):
    ContentType = apps.get_model("contenttypes.ContentType")
    Page = apps.get_model("wagtailcore.Page")
    Site = apps.get_model("wagtailcore.Site")
    HomePage = apps.get_model("home.HomePage")
    Locale = apps.get_model("wagtailcore.Locale")

    # Replace Wagtail's welcome page with our home page.
    Page.objects.filter(depth=2, slug="home").delete()
    homepage_content_type, _ = ContentType.objects.get_or_create(model="homepage", app_label="home")
    homepage = HomePage.objects.create(
        title="Live from Wagtail",
        draft_title="Live from Wagtail",
        slug="home",
        content_type=homepage_content_type,
        path="00010001",
        depth=2,
        numchild=0,
        url_path="/home/",
        locale=Locale.objects.order_by("pk").first(),
        body=[
            {
                "type": "paragraph",
                "value": "<p>This page is an ordinary Wagtail page. Its body holds a "
                "<b>live player</b> block: when a session goes live, you watch it here, "
                "with chat, likes and a live viewer count.</p>",
            }
        ],
    )
    Site.objects.update_or_create(
        is_default_site=True,
        defaults={
            "hostname": "localhost",
            "root_page": homepage,
            "site_name": "Wagtail Live example",
        },
    )


def remove_homepage(apps, schema_editor):
    apps.get_model("home.HomePage").objects.filter(slug="home", depth=2).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("home", "0001_initial"),
        ("wagtailcore", "0078_referenceindex"),
        # Deleting the welcome page cascades to every Page subclass table, ours included.
        ("wagtail_live", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_homepage, remove_homepage)]
