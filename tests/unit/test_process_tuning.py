"""The production entry point (webapp.wsgi) tunes the garbage collector of its process (webapp.process)."""

from __future__ import annotations

import subprocess
import sys

from webapp.process import YOUNG_GENERATION_THRESHOLD


def test_a_server_process_freezes_the_app_and_collects_young_objects_less_often(tmp_path):
    # A process of its own: freezing is for good, and the test run's collector stays as it is.
    probe = ("import gc; before = gc.get_freeze_count(); import webapp.wsgi; "
             "print(before, gc.get_freeze_count(), gc.get_threshold()[0])")
    env = {"JOINTCALL_DATABASE_URL": f"sqlite:///{tmp_path / 'probe.db'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout.split()
    before, frozen, young = (int(x) for x in out)
    assert before == 0
    assert frozen > 10_000  # the app's routes, templates and mappers, and the libraries under them
    assert young == YOUNG_GENERATION_THRESHOLD
