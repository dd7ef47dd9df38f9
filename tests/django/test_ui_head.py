"""A new UI database of the built-in project (``sauci serve``'s) is made from
project/ui_head.sql instead of running `migrate`, and that file is what `migrate`
makes with the installed Django, axes and SauCI (issue "Operations that tell the
truth", item 6: the UI soon after a first start). Each case runs in a process of
its own: the built-in project configures Django, which a process does once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sauci.contrib.django.project import ui_head

_SETUP = """
import sys
from pathlib import Path
import django
from django.conf import settings
from sauci.contrib.django.project.serve import project_settings
from sauci.core.config import Settings
data = Path(sys.argv[1])
settings.configure(**project_settings(Settings(data_dir=data)))
django.setup()
from sauci.contrib.django.project import ui_head
from sauci.contrib.django.project.migrations_due import migrations_due
db = data / "ui" / "ui.sqlite3"
"""


def _run(tmp_path: Path, body: str) -> str:
    code = _SETUP + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def _migrations(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if '"django_migrations"' in line)


def test_the_file_is_what_migrate_makes(tmp_path):
    fresh = tmp_path / "fresh.sql"
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from sauci.contrib.django.project.ui_head_write import write_ui_head; "
            f"from pathlib import Path; write_ui_head(Path({str(fresh)!r}))",
        ],
        check=True,
        timeout=120,
    )
    kept = ui_head.HEAD_SQL.read_text(encoding="utf-8")
    made = fresh.read_text(encoding="utf-8")
    if _migrations(made) != _migrations(kept):
        pytest.skip(
            "other versions of Django or axes: serve runs migrate until the file is written again"
        )
    assert made == kept, (
        "migrate makes another UI database: write it again with python -c "
        "'from sauci.contrib.django.project.ui_head_write import write_ui_head; write_ui_head()'"
    )


def test_a_new_database_from_the_file_needs_no_migrate_and_takes_a_login(tmp_path):
    out = _run(
        tmp_path,
        """
        made = ui_head.create_ui_head(db)
        from django.contrib.auth import get_user_model
        from django.contrib.contenttypes.models import ContentType
        get_user_model().objects.create_superuser("admin", email="", password="pw-123456")
        print(made, migrations_due(), get_user_model().objects.get(username="admin").check_password("pw-123456"),
              ContentType.objects.filter(app_label="sauci").exists())
        """,
    )
    assert "True False True True" == out


def test_a_database_with_a_table_is_left_to_migrate(tmp_path):
    out = _run(
        tmp_path,
        """
        import sqlite3
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db); conn.execute("CREATE TABLE notes (text TEXT)"); conn.commit(); conn.close()
        print(ui_head.create_ui_head(db), migrations_due())
        """,
    )
    assert "False True" == out


def test_a_restart_reads_neither_the_dump_nor_the_migrations(tmp_path):
    """Every start asks; a restart's database has tables, and that answer
    comes before the dump is read or any migrations directory listed."""
    out = _run(
        tmp_path,
        f"""
        from pathlib import Path
        print(ui_head.create_ui_head(db))
        ui_head.HEAD_SQL = Path({str(tmp_path / "missing.sql")!r})

        def listed():
            raise AssertionError("the migrations were listed")

        ui_head._on_disk = listed
        print(ui_head.create_ui_head(db))
        """,
    )
    assert "True\nFalse" == out


def test_a_file_of_other_versions_rolls_back_and_leaves_it_to_migrate(tmp_path):
    """A dump that records a migration this installation does not have (or
    lacks one it has) is not used: nothing of it stays in the database."""
    other = tmp_path / "other.sql"
    other.write_text(
        ui_head.HEAD_SQL.read_text(encoding="utf-8")
        + "INSERT INTO \"django_migrations\" VALUES(999,'auth','9999_future','1970-01-01 00:00:00');\n",
        encoding="utf-8",
    )
    out = _run(
        tmp_path,
        f"""
        import sqlite3
        from pathlib import Path
        ui_head.HEAD_SQL = Path({str(other)!r})
        made = ui_head.create_ui_head(db)
        tables = sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        print(made, tables)
        """,
    )
    assert "False 0" == out
