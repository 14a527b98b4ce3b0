"""``docs/configuration.md``, generated from the settings' declarations (``python tools/sync_config_doc.py``).

Every ``PROOFCHECK_*`` variable the repository mentions is listed there: a setting's (from its
declaration), or one of ``OTHER_VARIABLES`` (read by the tests, the benchmarks or the compose stack,
never by ``proofcheck``). A test fails when the file is stale or a variable is missing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from validators.settingslib import CONFIG_ENV, SettingsBase, Spec, hints_of, section_type, spec_of

CONFIG_DOC = "docs/configuration.md"


@dataclass(frozen=True)
class OtherVariable:
    name: str
    read_by: str
    doc: str


OTHER_VARIABLES: tuple[OtherVariable, ...] = (
    OtherVariable("PROOFCHECK_ANS_TREE", "tests, benchmarks (`fixtures/ans.py`)",
                  "the ANS TestContenuCDA-3-0 tree; default `../shared/ans/TestContenuCDA-3-0` beside the clone"),
    OtherVariable("PROOFCHECK_SHARED", "tests (`fixtures/ans.py`)",
                  "the shared reference folder (ANS tree, crosswalk facts); default `../shared` beside the clone"),
    OtherVariable("PROOFCHECK_FUZZ_EXAMPLES", "tests (`tests/test_fuzz_support.py`)",
                  "examples per property-based fuzz test (more than CI's on demand)"),
    OtherVariable("PROOFCHECK_S3_ACCESS_KEY", "`docker/compose.yaml`",
                  "the pipeline's S3 access key in the compose stack (given to boto3 as `AWS_ACCESS_KEY_ID`)"),
    OtherVariable("PROOFCHECK_S3_SECRET_KEY", "`docker/compose.yaml`",
                  "its secret key (`AWS_SECRET_ACCESS_KEY`)"),
    OtherVariable("PROOFCHECK_INSTRUCTORS_ACCESS_KEY", "`docker/seaweedfs-s3.json.template`",
                  "the instructors' read-only S3 identity in the compose stack"),
    OtherVariable("PROOFCHECK_INSTRUCTORS_SECRET_KEY", "`docker/seaweedfs-s3.json.template`",
                  "its secret key"),
    OtherVariable("PROOFCHECK_SCREENSHOTS", "tests (`tests/test_web_browser.py`)",
                  "a folder where the workbench's browser tests save page screenshots (for review)"),
)

_INTRO = f"""# Configuration

Generated from `validators/settings.py` (the engine), `flows/settings.py` (the pipeline) and
`flows/web/config.py` (the workbench) by `python tools/sync_config_doc.py`; do not edit.
`proofcheck config` prints the effective value of every setting and where it came from (`default`,
`env VARIABLE`, `file PATH`), secrets masked; `--format json` for tools.

Each setting is read, lowest first, from: its default; the optional settings file named by
`{CONFIG_ENV}` (TOML, or YAML by its `.yaml`/`.yml` suffix; tables `[engine]`, `[pipeline]` and
`[web]`, keys as in the *setting* column); its environment variable; for the engine, `PROOFCHECK_ENGINE_SETTINGS` (a
JSON object of engine settings, how the pipeline hands them to its flow runs); and values a program
sets itself (tests, the demo). Every `proofcheck` command checks them all first: a wrong value (an
unknown choice, a negative limit, a path that cannot be read, an unknown key) stops it with one line
that names the variable (exit 2). A `PROOFCHECK_*` variable that no setting reads is reported as a
warning (a typo would otherwise be ignored).

```toml
# PROOFCHECK_CONFIG=/etc/proofcheck.toml
[engine]
clamd = "unix:/run/clamav/clamd.ctl"
antivirus_max_database_age_days = 2
timeouts = {{ "ssi-pdf" = 30 }}

[engine.archive]
max_entries = 500

[pipeline]
bucket = "proofcheck-prod"
check_slots = 4
```
"""


def _default(f: dataclasses.Field[Any], spec: Spec | None) -> str:
    if spec is not None and spec.default_doc:
        return spec.default_doc
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if is_dataclass(value):
            return "see below"
    else:
        return ""
    return _value(f.name, value)


def _value(name: str, value: Any) -> str:
    if value is None or value == () or value == {}:
        return "none"
    sized = any(word in name for word in ("bytes", "size", "dictionary", "floor"))
    if sized and isinstance(value, int) and not isinstance(value, bool):
        for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value >= scale and value % scale == 0:
                return f"{value // scale} {unit}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def variable_rows(classes: list[type[SettingsBase]]) -> list[str]:
    rows = ["| variable | setting | what | default |", "|---|---|---|---|"]
    for cls in classes:
        hints = hints_of(cls)
        for f, spec in cls.specs():
            if spec.env:
                rows.append(_row(spec.env, f"{cls.section_name}.{f.name}", spec, _default(f, spec)))
            section = section_type(hints[f.name])
            for inner in fields(section) if section is not None else ():
                inner_spec = spec_of(inner)
                if inner_spec is not None and inner_spec.env:
                    name = f"{cls.section_name}.{f.name}.{inner.name}"
                    rows.append(_row(inner_spec.env, name, inner_spec, _default(inner, inner_spec)))
        if cls.json_env:
            rows.append(f"| `{cls.json_env}` | `{cls.section_name}.*` | a JSON object of {cls.section_name} "
                        "settings, over the single variables | `{}` |")
    rows.append(f"| `{CONFIG_ENV}` | | a settings file (TOML or YAML), under the environment | none |")
    return rows


def _row(variable: str, name: str, spec: Spec, default: str) -> str:
    secret = " (secret: never shown)" if spec.secret else ""
    return f"| `{variable}` | `{name}` | {_cell(spec.doc)}{secret} | {_cell(default)} |"


def file_only_rows(classes: list[type[SettingsBase]]) -> list[str]:
    """Settings without a variable of their own: the file, or PROOFCHECK_ENGINE_SETTINGS."""
    rows = ["| setting | what | default |", "|---|---|---|"]
    for cls in classes:
        hints = hints_of(cls)
        for f, spec in cls.specs():
            section = section_type(hints[f.name])
            if section is not None:
                rows.append(f"| `{cls.section_name}.{f.name}` | {_cell(spec.doc)} | |")
                for inner in fields(section):
                    inner_spec = spec_of(inner)
                    if (inner_spec is not None and inner_spec.env) or inner.name == "other":
                        continue
                    doc = inner_spec.doc if inner_spec else ""
                    name = f"{cls.section_name}.{f.name}.{inner.name}"
                    rows.append(f"| `{name}` | {_cell(doc)} | {_cell(_default(inner, inner_spec))} |")
            elif not spec.env:
                rows.append(f"| `{cls.section_name}.{f.name}` | {_cell(spec.doc)} | {_cell(_default(f, spec))} |")
    return rows


def render_config_doc(classes: list[type[SettingsBase]]) -> str:
    lines = [_INTRO, "## Environment variables", "", *variable_rows(classes), ""]
    lines += ["## Settings without a variable of their own", "",
              "Set in the settings file or in `PROOFCHECK_ENGINE_SETTINGS` "
              '(`{"archive": {"max_entries": 500}, "timeouts": {"ssi-pdf": 30}}`). '
              "Undeclared numbers of a section are limits: `max_*` must be above 0, the others at least 0.", "",
              *file_only_rows(classes), ""]
    lines += ["## Variables read by the tests, the benchmarks or the compose stack", "",
              "Not settings of `proofcheck`; listed so that every `PROOFCHECK_*` name has a home. Prefect reads "
              "its own `PREFECT_*` variables (`PREFECT_API_URL`...) and boto3 the usual `AWS_*` ones.", "",
              "| variable | read by | what |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {v.read_by} | {_cell(v.doc)} |" for v in OTHER_VARIABLES]
    return "\n".join(lines) + "\n"
