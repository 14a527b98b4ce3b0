"""Typed settings declared as dataclass fields, built in layers, each value knowing where it came from.

A settings class is a frozen dataclass whose fields are declared with ``setting(...)``: the default, the
environment variable (if any), a line of documentation, the checks a value must pass, whether it is a
secret, and whether it can change a check's result (the result cache keys only those). ``load`` builds
one from the layers, lowest first: the defaults, an optional file (``PROOFCHECK_CONFIG``, TOML or
YAML), the environment, then values set by the program (a dict, as tests and the pipeline pass). Every
problem found is collected and raised at once as ``SettingsError``, whose one line names the variable
and what is wrong, so a wrong setting stops a command at start instead of deep inside a run.

Types understood: ``str``, ``int``, ``float``, ``bool``, ``Path``, ``Literal[...]``, ``X | None``,
``tuple[T, ...]`` (comma- or ``os.pathsep``-separated in the environment), ``Mapping[str, float]`` and
sections (a frozen dataclass of such fields, given as a table in a file or a JSON object in a variable).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import yaml

CONFIG_ENV = "PROOFCHECK_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024
DEFAULT = "default"
CODE = "code"  # set by the program itself (a dict passed to the engine, a test, the demo)

Check = Callable[[Any], str | None]  # a problem with the value, or None
S = TypeVar("S", bound="SettingsBase")


class SettingsError(ValueError):
    """Settings that cannot be used: every problem found, the first one (and a count) on one line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        more = len(self.problems) - 1
        tail = f" (and {more} more: `proofcheck config` lists them)" if more > 0 else ""
        super().__init__(f"{self.problems[0] if self.problems else 'invalid settings'}{tail}")


@dataclass(frozen=True)
class Spec:
    """What a setting is, besides its type and default."""

    doc: str
    env: str | None = None
    checks: tuple[Check, ...] = ()
    secret: bool = False
    # False for where/how settings (an address, a folder, a binary): they never change a check's result,
    # so the per-file result cache does not key on them.
    affects_results: bool = True
    default_doc: str | None = None  # how the default is described when it is computed at load
    separator: str = ","  # between the items of a tuple given in the environment


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    env: str | None = None,
    checks: tuple[Check, ...] = (),
    secret: bool = False,
    affects_results: bool = True,
    default_doc: str | None = None,
    separator: str = ",",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its ``Spec``."""
    spec = Spec(doc, env, checks, secret, affects_results, default_doc, separator)
    if factory is not None:
        return field(default_factory=factory, metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


# -- checks a value must pass -------------------------------------------------------------------------


def at_least(minimum: float) -> Check:
    def check(value: Any) -> str | None:
        return f"must be >= {minimum:g}" if value is not None and value < minimum else None

    return check


def above(minimum: float) -> Check:
    def check(value: Any) -> str | None:
        return f"must be > {minimum:g}" if value is not None and value <= minimum else None

    return check


def _paths(value: Any) -> list[Path]:
    if value is None:
        return []
    return list(value) if isinstance(value, tuple) else [value]


def readable_file(value: Any) -> str | None:
    for path in _paths(value):
        if not path.is_file():
            return f"{path} is not a file" if path.exists() else f"{path} does not exist"
        if not os.access(path, os.R_OK):
            return f"{path} is not readable"
    return None


def readable_dir(value: Any) -> str | None:
    for path in _paths(value):
        if not path.is_dir():
            return f"{path} is not a folder" if path.exists() else f"{path} does not exist"
        if not os.access(path, os.R_OK | os.X_OK):
            return f"{path} is not readable"
    return None


def readable_path(value: Any) -> str | None:
    """A file or a folder (of key files, for instance)."""
    for path in _paths(value):
        if not path.exists():
            return f"{path} does not exist"
        if not os.access(path, os.R_OK):
            return f"{path} is not readable"
    return None


def dir_or_absent(value: Any) -> str | None:
    """A folder the program may create: refused only when something else is in the way."""
    for path in _paths(value):
        if path.exists() and not path.is_dir():
            return f"{path} is not a folder"
    return None


# -- converting a raw value (text from the environment, or a value from a file or a dict) -------------


class _Invalid(ValueError):
    pass


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _optional(hint: Any) -> tuple[Any, bool]:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return args[0], True
    return hint, False


def convert(raw: Any, hint: Any, current: Any = None, separator: str = ",") -> Any:
    """``raw`` as a value of type ``hint`` (``current`` is the value a partial section updates)."""
    inner, optional = _optional(hint)
    if optional and (raw is None or raw == ""):
        return None
    origin = get_origin(inner)
    if origin is Literal:
        choices = get_args(inner)
        if raw not in choices:
            raise _Invalid("must be one of " + ", ".join(str(c) for c in choices))
        return raw
    if is_dataclass(inner) and isinstance(inner, type):
        return _section(raw, inner, current)
    if origin is tuple:
        item = get_args(inner)[0]
        items = raw.split(separator) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise _Invalid("must be a list")
        return tuple(convert(i.strip() if isinstance(i, str) else i, item) for i in items if i != "")
    if origin in (Mapping, dict) or inner is Mapping:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, Mapping):
            raise _Invalid("must be a table (a JSON object in a variable)")
        value_type = get_args(inner)[1] if get_args(inner) else Any
        return {str(k): v if value_type is Any else convert(v, value_type) for k, v in value.items()}
    return _scalar(raw, inner)


def _scalar(raw: Any, hint: Any) -> Any:
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise _Invalid("must be true or false")
    if hint in (int, float):
        if isinstance(raw, bool) or (hint is int and isinstance(raw, float) and not raw.is_integer()):
            raise _Invalid(f"must be {'an integer' if hint is int else 'a number'}")
        try:
            return hint(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise _Invalid(f"must be {'an integer' if hint is int else 'a number'}") from None
    if hint is Path:
        if not isinstance(raw, (str, Path)) or str(raw) == "":
            raise _Invalid("must be a path")
        return Path(os.path.expanduser(str(raw)))
    if hint is str:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise _Invalid("must be text")
        return str(raw)
    if hint is Any:
        return raw
    raise _Invalid(f"unsupported setting type {hint!r}")


def _section(raw: Any, cls: type[Any], current: Any) -> Any:
    """A section (dataclass) updated with the keys ``raw`` sets; unknown keys are refused by name."""
    if isinstance(raw, cls):
        return raw
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, Mapping):
        raise _Invalid("must be a table (a JSON object in a variable)")
    base: Any = current if isinstance(current, cls) else cls()
    hints = hints_of(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(value) - set(known))
    open_section = "other" in known and getattr(cls, "open_section", False)
    if unknown and not open_section:
        raise _Invalid("unknown key " + ", ".join(unknown) + " (known: " + ", ".join(known) + ")")
    changes: dict[str, Any] = {}
    for key in set(value) & set(known):
        spec = spec_of(known[key])
        try:
            changes[key] = convert(value[key], hints[key], getattr(base, key), spec.separator if spec else ",")
        except _Invalid as exc:
            raise _Invalid(f"{key}: {exc}") from None
    if unknown:  # an open section keeps, as they are, the keys its check reads before it declares them
        changes["other"] = {**changes.get("other", base.other), **{k: value[k] for k in unknown}}
    return replace(base, **changes)


_HINTS: dict[Any, dict[str, Any]] = {}


def hints_of(cls: Any) -> dict[str, Any]:
    """The resolved field types of a settings class or section."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    factory: Callable[[], Any] = f.default_factory  # type: ignore[assignment]
    return factory()


def spec_of(f: dataclasses.Field[Any]) -> Spec | None:
    spec = f.metadata.get("spec")
    return spec if isinstance(spec, Spec) else None


def section_checks(value: Any) -> Iterator[tuple[str, Any, Spec | None, str]]:
    """A section's declared checks; its undeclared numbers (limits) must not be negative, ``max_*`` > 0.

    Yields (key, value, spec, problem).
    """
    for f in fields(value):
        item = getattr(value, f.name)
        spec = spec_of(f)
        if spec is not None and spec.checks:
            problem = next((p for p in (check(item) for check in spec.checks) if p), None)
            if problem:
                yield f.name, item, spec, problem
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        elif f.name.startswith("max_") and item <= 0:
            yield f.name, item, spec, "must be > 0"
        elif item < 0:
            yield f.name, item, spec, "must be >= 0"


# -- the file layer -----------------------------------------------------------------------------------


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings file (TOML, or YAML by its suffix): a table per settings section."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise SettingsError([f"{CONFIG_ENV}={path}: over {MAX_CONFIG_BYTES} bytes"])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError([f"{CONFIG_ENV}={path}: cannot be read ({exc.strerror or type(exc).__name__})"]) from None
    except UnicodeDecodeError:
        raise SettingsError([f"{CONFIG_ENV}={path}: not UTF-8 text"]) from None
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        data = (yaml.safe_load(text) or {}) if is_yaml else tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        # The position only: the message of a parser may quote the file (a secret in it).
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SettingsError([f"{CONFIG_ENV}={path}: not valid {'YAML' if is_yaml else 'TOML'}{where}"]) from None
    if not isinstance(data, dict):
        raise SettingsError([f"{CONFIG_ENV}={path}: expected tables of settings"])
    return data


# -- loading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One source of values by field name (a section's value: a table of some of its keys)."""

    source: str  # "file PATH", "env" (each value then names its variable), "code"
    values: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)  # how problems name a value: its variable


def section_type(hint: Any) -> type | None:
    inner, _ = _optional(hint)
    return inner if is_dataclass(inner) and isinstance(inner, type) else None


class SettingsBase:
    """Shared behaviour of settings classes (frozen dataclasses whose fields are declared with ``setting``)."""

    # The table of the settings file this class reads ("engine", "pipeline").
    section_name: typing.ClassVar[str] = ""
    # A variable holding a JSON object of values, above the single variables (the engine's, for the pipeline).
    json_env: typing.ClassVar[str | None] = None

    @classmethod
    def specs(cls) -> Iterator[tuple[dataclasses.Field[Any], Spec]]:
        for f in fields(cls):  # type: ignore[arg-type]
            spec = spec_of(f)
            if spec is not None:
                yield f, spec

    @classmethod
    def variables(cls) -> Iterator[tuple[str, str, Spec]]:
        """(setting name, variable, spec) of every setting a variable sets, sections' included."""
        hints = hints_of(cls)
        for f, spec in cls.specs():
            if spec.env:
                yield f.name, spec.env, spec
            section = section_type(hints[f.name])
            if section is not None:
                for inner in fields(section):
                    inner_spec = spec_of(inner)
                    if inner_spec is not None and inner_spec.env:
                        yield f"{f.name}.{inner.name}", inner_spec.env, inner_spec

    @classmethod
    def variable_of(cls, name: str) -> str:
        """The environment variable of setting ``name`` (for messages that tell an operator what to set)."""
        found = next((variable for setting_name, variable, _ in cls.variables() if setting_name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    @classmethod
    def load(
        cls: type[S],
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        file_data: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> S:
        """Defaults < settings file < environment < ``overrides``; raises SettingsError with every problem.

        ``extra``: values of fields that are not settings themselves (a nested settings object).
        """
        env = os.environ if env is None else env
        problems: list[str] = []
        layers: list[Layer] = []
        if file_data is None and env.get(CONFIG_ENV):
            path = Path(os.path.expanduser(env[CONFIG_ENV]))
            layers.append(cls._file_layer(read_config_file(path), f"file {path}", problems))
        elif file_data is not None:
            layers.append(cls._file_layer(file_data, "file", problems))
        layers.append(cls._env_layer(env, problems))
        if overrides:
            known = {f.name for f, _ in cls.specs()}
            problems.extend(f"unknown setting {name!r} (set in code)" for name in sorted(set(overrides) - known))
            layers.append(Layer(CODE, {k: v for k, v in overrides.items() if k in known}))
        values, sources = cls._merge(layers, problems)
        values, sources = cls.derive(values, sources)
        built = cls(**values, **(extra or {}))
        object.__setattr__(built, "_sources", sources)
        problems.extend(built.check_all())
        if problems:
            raise SettingsError(problems)
        return built

    @classmethod
    def _file_layer(cls, data: Mapping[str, Any], source: str, problems: list[str]) -> Layer:
        table = data.get(cls.section_name, {})
        if not isinstance(table, Mapping):
            problems.append(f"{source}: [{cls.section_name}] must be a table")
            table = {}
        known = {f.name for f, _ in cls.specs()}
        problems.extend(f"{source}: unknown setting {cls.section_name}.{k}" for k in sorted(set(table) - known))
        values = {k: v for k, v in table.items() if k in known}
        return Layer(source, values, {k: f"{cls.section_name}.{k} ({source})" for k in values})

    @classmethod
    def _env_layer(cls, env: Mapping[str, str], problems: list[str]) -> Layer:
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for name, variable, _spec in cls.variables():
            if env.get(variable, "") == "":
                continue
            top, _, key = name.partition(".")
            if key:  # a section's key set by its own variable
                values.setdefault(top, {})[key] = env[variable]
            else:
                values[top] = env[variable]
            labels[name] = labels[top] = variable
        if cls.json_env and env.get(cls.json_env):
            extra = cls._json_layer(env[cls.json_env], problems)
            for key, value in extra.items():
                if isinstance(value, Mapping) and isinstance(values.get(key), dict):
                    values[key] = {**values[key], **value}
                else:
                    values[key] = value
                labels[key] = cls.json_env
                for inner in value if isinstance(value, Mapping) else ():
                    labels[f"{key}.{inner}"] = cls.json_env
        return Layer("env", values, labels)

    @classmethod
    def _json_layer(cls, text: str, problems: list[str]) -> dict[str, Any]:
        name = cls.json_env or ""
        try:
            extra = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"{name}: not valid JSON")
            return {}
        if not isinstance(extra, dict):
            problems.append(f"{name}: must be a JSON object")
            return {}
        known = {f.name for f, _ in cls.specs()}
        problems.extend(f"{name}: unknown setting {k!r}" for k in sorted(set(extra) - known))
        return {k: v for k, v in extra.items() if k in known}

    @classmethod
    def _merge(cls, layers: list[Layer], problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        hints = hints_of(cls)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for f, spec in cls.specs():
            current = _default(f)
            for layer in layers:
                if f.name not in layer.values:
                    continue
                raw = layer.values[f.name]
                try:
                    current = convert(raw, hints[f.name], current, spec.separator)
                except _Invalid as exc:
                    problems.append(f"{layer.labels.get(f.name, f.name)}={_shown(raw, spec)}: {exc}")
                    continue
                section = isinstance(raw, Mapping) and section_type(hints[f.name]) is not None
                keys = [f"{f.name}.{k}" for k in raw] if section else [f.name]
                for key in keys:
                    variable = layer.labels.get(key)
                    sources[key] = f"env {variable}" if layer.source == "env" and variable else layer.source
            values[f.name] = current
        return values, sources

    @classmethod
    def derive(cls, values: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Defaults computed from other settings (a folder under the home folder...)."""
        return values, sources

    def check_all(self) -> list[str]:
        problems = []
        for f, spec in self.specs():
            value = getattr(self, f.name)
            problem = next((p for p in (check(value) for check in spec.checks) if p), None)
            if problem:
                problems.append(self.problem(f.name, value, spec, problem))
            if is_dataclass(value):
                for key, item, inner, message in section_checks(value):
                    problems.append(self.problem(f"{f.name}.{key}", item, inner or spec, message))
        return problems + self.check_together()

    def problem(self, name: str, value: Any, spec: Spec, message: str) -> str:
        """One line naming the setting as the operator set it: its variable, or its key and file."""
        shown = _shown(value, spec)
        label = self.label_of(name)
        if label == self.json_env:
            return f"{label}: {name}={shown}: {message}"
        if label != name:
            return f"{label}={shown}: {message}"
        origin = self.origin_of(name)
        where = "" if origin == DEFAULT else f" ({origin})"
        return f"{self.section_name}.{name}={shown}{where}: {message}"

    def check_together(self) -> list[str]:
        """Problems of several settings at once (a maximum below a minimum...)."""
        return []

    # -- where values came from ------------------------------------------------------------------------

    def origin_of(self, name: str) -> str:
        """``default``, ``env VARIABLE``, ``file PATH`` or ``code`` (``name`` may be ``section.key``)."""
        sources: Mapping[str, str] = getattr(self, "_sources", {})
        return sources.get(name) or sources.get(name.partition(".")[0]) or DEFAULT

    def label_of(self, name: str) -> str:
        """How a message names a setting: its variable when it came from one, else its name."""
        source = self.origin_of(name)
        return source[len("env ") :] if source.startswith("env ") else name

    def rows(self) -> list[dict[str, Any]]:
        """Every setting (each key of a section) with its shown value and source, secrets masked."""
        out = []
        for f, spec in self.specs():
            value = getattr(self, f.name)
            if is_dataclass(value) and not isinstance(value, type):
                for inner in fields(value):
                    if inner.name == "other" and not getattr(value, inner.name):
                        continue  # an open section's keys not declared yet: shown only when set
                    inner_spec = spec_of(inner) or replace(spec, env=None)
                    name = f"{f.name}.{inner.name}"
                    out.append(self._row(name, inner_spec, getattr(value, inner.name)))
            else:
                out.append(self._row(f.name, spec, value))
        return out

    def _row(self, name: str, spec: Spec, value: Any) -> dict[str, Any]:
        return {
            "setting": f"{self.section_name}.{name}",
            "variable": spec.env,
            "value": shown_value(value, spec),
            "source": self.origin_of(name),
        }


def shown_value(value: Any, spec: Spec) -> Any:
    """A value as JSON can carry it, with secrets masked (a URL keeps everything but its password)."""
    if spec.secret and value not in (None, ""):
        return "***"
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [shown_value(v, spec) for v in value]
    if isinstance(value, Mapping):
        return {k: shown_value(v, spec) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: shown_value(getattr(value, f.name), spec) for f in fields(value)}
    return value


def _shown(value: Any, spec: Spec) -> str:
    shown = shown_value(value, spec)
    text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def mask_url(url: str) -> str:
    """``scheme://user:***@host/...``: the password of a URL never shown."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
