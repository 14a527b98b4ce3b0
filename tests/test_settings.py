"""One settings object: typed, built in layers with their sources, checked at start, documented from itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.settings import PipelineSettings
from flows.web.config import WebSettings
from validators import cli
from validators.config_cli import unknown_variables
from validators.config_doc import CONFIG_DOC, OTHER_VARIABLES, render_config_doc
from validators.limits import ArchiveLimits
from validators.settings import EngineSettings
from validators.settingslib import SettingsError, mask_url

ROOT = Path(__file__).resolve().parents[1]
TYPO = "PROOFCHECK_" + "CLAMDD"  # a variable no setting reads (spelt apart: the repository scan must not see it)


def problems(**env: str) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        PipelineSettings.from_env(env)
    return caught.value.problems


# -- layers and sources -----------------------------------------------------------------------------------


def test_values_are_typed_and_say_where_they_came_from(tmp_path: Path) -> None:
    config = tmp_path / "proofcheck.toml"
    config.write_text('[engine]\nantivirus_max_database_age_days = 3\n[engine.archive]\nmax_entries = 50\n'
                      '[pipeline]\ncheck_slots = 4\nbucket = "from-file"\n', encoding="utf-8")
    env = {"PROOFCHECK_CONFIG": str(config), "PROOFCHECK_BUCKET": "from-env", "PROOFCHECK_CLAMD": "127.0.0.1:3310",
           "PROOFCHECK_ENGINE_SETTINGS": json.dumps({"archive": {"max_depth": 2}})}
    settings = PipelineSettings.from_env(env)
    engine = settings.engine_settings
    assert (settings.bucket, settings.check_slots) == ("from-env", 4)  # the environment over the file
    assert engine.antivirus_max_database_age_days == 3.0 and engine.clamd == "127.0.0.1:3310"
    assert engine.archive == ArchiveLimits(max_entries=50, max_depth=2)  # file and JSON keys merged
    assert settings.origin_of("bucket") == "env PROOFCHECK_BUCKET"
    assert settings.origin_of("check_slots") == f"file {config}"
    assert engine.origin_of("archive.max_entries") == f"file {config}"
    assert engine.origin_of("archive.max_depth") == "env PROOFCHECK_ENGINE_SETTINGS"
    assert engine.origin_of("archive.max_ratio") == "default"
    assert settings.index_url.startswith("sqlite:///") and settings.origin_of("index_url").startswith("default")


def test_a_yaml_file_is_read_too(tmp_path: Path) -> None:
    config = tmp_path / "proofcheck.yaml"
    config.write_text("engine:\n  xml_max_depth: 64\npipeline:\n  executor: process\n", encoding="utf-8")
    settings = PipelineSettings.from_env({"PROOFCHECK_CONFIG": str(config)})
    assert (settings.engine_settings.xml_max_depth, settings.executor) == (64, "process")


def test_dicts_keep_working_as_overrides_of_the_environment() -> None:
    settings = EngineSettings.coerce({"clamd": "unix:/x.sock", "email": {"max_parts": 7}, "cda_profiles": []})
    assert settings.clamd == "unix:/x.sock" and settings.email.max_parts == 7 and settings.cda_profiles == ()
    assert settings.origin_of("clamd") == "code"
    assert settings["email"]["max_parts"] == 7 and settings.get("no-such-setting") is None  # the dict view
    assert EngineSettings.coerce(settings) is settings


def test_the_pipeline_hands_its_settings_to_a_child_process(tmp_path: Path) -> None:
    settings = PipelineSettings(work_dir=tmp_path, index_url="sqlite:///i.db", check_slots=3,
                                engine_settings={"archive": {"max_entries": 9}})
    child = PipelineSettings.from_env(settings.to_env())
    assert child == settings and child.engine_settings.archive.max_entries == 9


# -- bad input: one clear line at start -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PROOFCHECK_EXECUTOR": "threads"}, "PROOFCHECK_EXECUTOR=threads: must be one of warm, process"),
        ({"PROOFCHECK_CHECK_SLOTS": "-2"}, "PROOFCHECK_CHECK_SLOTS=-2: must be >= 1"),
        ({"PROOFCHECK_CHECK_SLOTS": "two"}, "PROOFCHECK_CHECK_SLOTS=two: must be an integer"),
        ({"PROOFCHECK_AV_MAX_AGE_DAYS": "-1"}, "PROOFCHECK_AV_MAX_AGE_DAYS=-1.0: must be > 0"),
        ({"PROOFCHECK_PII_ALLOWLIST": "/nonexistent/ids.yaml"}, "/nonexistent/ids.yaml does not exist"),
        ({"PROOFCHECK_CLAMD": "clamd"}, "PROOFCHECK_CLAMD=clamd: expected unix:/path/clamd.sock or host:port"),
        ({"PROOFCHECK_INDEX_URL": "mysql://db"}, "PROOFCHECK_INDEX_URL=mysql://db: expected sqlite"),
        ({"PROOFCHECK_ENGINE_SETTINGS": '{"archive": {"max_entries": -5}}'},
         "PROOFCHECK_ENGINE_SETTINGS: archive.max_entries=-5: must be > 0"),
        ({"PROOFCHECK_ENGINE_SETTINGS": '{"pdf_max_byte": 5}'}, "unknown setting 'pdf_max_byte'"),
        ({"PROOFCHECK_ENGINE_SETTINGS": "[1]"}, "PROOFCHECK_ENGINE_SETTINGS: must be a JSON object"),
        ({"PROOFCHECK_RETRY_FIRST": "100", "PROOFCHECK_RETRY_MAX": "10"}, "PROOFCHECK_RETRY_MAX=10 is below"),
    ],
    ids=["choice", "negative", "not-a-number", "negative-float", "unreadable-path", "clamd-address", "index-url",
         "section-limit", "unknown-key", "not-an-object", "together"],
)
def test_a_wrong_setting_is_named_with_what_is_wrong(env: dict[str, str], expected: str) -> None:
    assert any(expected in problem for problem in problems(**env)), problems(**env)


def test_every_problem_is_collected_and_the_line_says_how_many_more() -> None:
    with pytest.raises(SettingsError) as caught:
        PipelineSettings.from_env({"PROOFCHECK_EXECUTOR": "x", "PROOFCHECK_CHECK_SLOTS": "0"})
    assert len(caught.value.problems) == 2 and "\n" not in str(caught.value)
    assert "(and 1 more: `proofcheck config` lists them)" in str(caught.value)


def test_a_broken_or_unknown_settings_file_is_refused_by_name(tmp_path: Path) -> None:
    broken = tmp_path / "a.toml"
    broken.write_text("[engine\nclamd = 1", encoding="utf-8")
    assert any("not valid TOML" in p for p in problems(PROOFCHECK_CONFIG=str(broken)))
    typo = tmp_path / "b.toml"
    typo.write_text("[engine]\nclamdd = 'unix:/x'\n", encoding="utf-8")
    assert any("unknown setting engine.clamdd" in p for p in problems(PROOFCHECK_CONFIG=str(typo)))
    assert any("cannot be read" in p for p in problems(PROOFCHECK_CONFIG=str(tmp_path / "absent.toml")))


def test_a_password_in_a_url_is_never_shown() -> None:
    assert mask_url("postgresql+psycopg://proofcheck:s3cr3t@db:5432/index") == "postgresql+psycopg://proofcheck:***@db:5432/index"
    settings = PipelineSettings.from_env({"PROOFCHECK_INDEX_URL": "postgresql://u:s3cr3t@db/x"})
    assert "s3cr3t" not in json.dumps(settings.rows())


# -- the command line -------------------------------------------------------------------------------------


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("PROOFCHECK_")} | env
    full |= {k: os.environ[k] for k in ("PROOFCHECK_HOME", "PROOFCHECK_RULESETS") if k in os.environ}
    return subprocess.run([sys.executable, "-m", "validators.cli", *argv], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=120, check=False)


def test_a_command_with_a_wrong_setting_stops_at_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "INS.41.2.2").mkdir()
    (tmp_path / "INS.41.2.2" / "a.txt").write_text("x", encoding="utf-8")
    done = _run("dry-run", str(tmp_path), env={"PROOFCHECK_CHECK_SLOTS": "-1"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["proofcheck: configuration error: PROOFCHECK_CHECK_SLOTS=-1: must be >= 1"]


def test_config_prints_every_setting_its_value_and_source() -> None:
    done = _run("config", "--format", "json",
                env={"PROOFCHECK_INDEX_URL": "postgresql://u:pw@db/x", TYPO: "typo"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {r["setting"]: r for r in report["settings"]}
    assert rows["pipeline.index_url"] == {"setting": "pipeline.index_url", "variable": "PROOFCHECK_INDEX_URL",
                                          "value": "postgresql://u:***@db/x", "source": "env PROOFCHECK_INDEX_URL"}
    assert rows["engine.archive.max_entries"]["source"] == "default"
    assert report["unknown_variables"] == [TYPO] and report["problems"] == []
    classes = (EngineSettings, PipelineSettings, WebSettings)
    every = {f"{cls.section_name}.{name}" for cls in classes for name, _, _ in cls.variables()}
    assert every <= set(rows)
    text = _run("config", env={"PROOFCHECK_EXECUTOR": "x"})
    assert text.returncode == 2 and "PROOFCHECK_EXECUTOR=x: must be one of warm, process" in text.stderr


def test_the_workbench_settings_are_checked_and_shown_like_the_others() -> None:
    """`proofcheck config` masks the form key; a wrong web value stops any command with its variable."""
    key = "k" * 40
    done = _run("config", "--format", "json", env={"PROOFCHECK_WEB_SECRET": key, "PROOFCHECK_WEB_IDLE_MINUTES": "30"})
    assert done.returncode == 0, done.stderr
    rows = {r["setting"]: r for r in json.loads(done.stdout)["settings"]}
    assert rows["web.secret"]["source"] == "env PROOFCHECK_WEB_SECRET" and key not in done.stdout
    assert rows["web.idle_minutes"]["value"] == 30 and rows["web.session_minutes"]["source"] == "default"
    wrong = _run("config", env={"PROOFCHECK_WEB_SESSION_MINUTES": "0", "PROOFCHECK_OIDC_ISSUER": "https://idp"})
    assert wrong.returncode == 2
    assert "PROOFCHECK_WEB_SESSION_MINUTES=0: must be between 1 minute and 7 days" in wrong.stderr
    assert "PROOFCHECK_OIDC_ISSUER is set: set PROOFCHECK_OIDC_CLIENT_ID" in wrong.stderr
    short = _run("dry-run", str(ROOT / "README.md"), env={"PROOFCHECK_WEB_SECRET": "short"})
    assert short.returncode == 2 and short.stderr.splitlines() == [
        "proofcheck: configuration error: PROOFCHECK_WEB_SECRET=***: must be at least 32 characters"]


def test_the_workbench_settings_are_read_from_the_settings_file_too(tmp_path: Path) -> None:
    from flows.web.config import WebConfig

    config = tmp_path / "proofcheck.toml"
    config.write_text('[web]\nsession_minutes = 120\nsecure_cookies = true\n', encoding="utf-8")
    web = WebConfig.from_env({"PROOFCHECK_CONFIG": str(config), "PROOFCHECK_WEB_SECRET": "s" * 32})
    assert (web.session_seconds, web.secure_cookies, web.secret) == (7200, True, b"s" * 32)


def test_an_unknown_proofcheck_variable_is_a_warning() -> None:
    assert unknown_variables({TYPO: "x", "PROOFCHECK_CLAMD": "y", "HOME": "/"}) == [TYPO]


def test_the_parser_knows_config() -> None:
    assert cli.build_parser().parse_args(["config", "--format", "json"]).format == "json"


# -- the documentation is generated and complete ----------------------------------------------------------


def test_docs_configuration_is_current() -> None:
    expected = render_config_doc([EngineSettings, PipelineSettings, WebSettings])
    assert (ROOT / CONFIG_DOC).read_text(encoding="utf-8") == expected, (
        f"{CONFIG_DOC} is stale: regenerate it with `python tools/sync_config_doc.py`"
    )


def test_every_proofcheck_variable_of_the_repository_is_documented() -> None:
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    found: dict[str, str] = {}
    for name in tracked.splitlines():
        path = ROOT / name
        if name.startswith("docs/") or not path.is_file() or path.suffix in (".png", ".zip", ".gz"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for variable in re.findall(r"PROOFCHECK_[A-Z0-9_]*[A-Z0-9]", text):
            found.setdefault(variable, name)
    documented = (ROOT / CONFIG_DOC).read_text(encoding="utf-8")
    missing = {v: where for v, where in found.items() if f"`{v}`" not in documented}
    assert missing == {}, (
        "declare these as settings (validators/settings.py, flows/settings.py, flows/web/config.py) "
        "or in OTHER_VARIABLES"
    )
    assert {v.name for v in OTHER_VARIABLES} <= set(found)  # no stale entry
