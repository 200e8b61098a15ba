"""The software and machine a sweep records: what `versions` and `machine` hold, and how a run
made before harness recorded them reads back (the sweep's own test, through MLflow's client and
the report: tests/study/test_whole_study.py)."""

import json
import os
import platform
from importlib import metadata

from harness.tracking.environment import PACKAGES, environment_tags, recorded


def test_the_tags_name_python_every_declared_package_and_the_machine():
    tags = environment_tags()
    versions, machine = json.loads(tags["versions"]), json.loads(tags["machine"])
    assert list(versions) == ["python", *PACKAGES]
    assert versions["python"] == platform.python_version()
    assert versions["keras-tuner"] == metadata.version("keras-tuner")
    assert machine["CPU cores"] == str(os.cpu_count()) and machine["host"] == platform.node()
    assert all(len(v) <= 5000 for v in tags.values())  # MLflow's limit on a tag value


def test_a_run_without_them_or_with_a_damaged_one_reads_as_none():
    assert recorded({}, "versions") is None
    assert recorded({"versions": "{not json"}, "versions") is None
    assert recorded({"versions": '["a list"]'}, "versions") is None
    assert recorded(environment_tags(), "machine")["processor"] == platform.machine()
