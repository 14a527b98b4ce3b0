"""``make demo`` ends with the workbench: started over the demo's index and bucket, its URL and accounts
printed, signed in with them, and stopped by its PID with the rest of the demo."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("moto")
pytest.importorskip("starlette")

from flows.devharness.demo import PUBLISHER, start_workbench
from flows.devharness.local import local_pipeline


def test_the_demo_prints_a_workbench_url_whose_accounts_sign_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                                 ) -> None:
    with local_pipeline(tmp_path) as pipeline:
        pipeline.start_s3(notifications=False)
        start_workbench(pipeline, keep=False)
        out = capsys.readouterr().out
        found = re.search(r"workbench: (http://127\.0\.0\.1:\d+)/paquets\?editeur=" + PUBLISHER +
                          r" — instructeur / (\S+) ; éditeur \S+ / (\S+)", out)
        assert found, out
        base, password = found.group(1), found.group(2)
        assert "DEMO_KEEP=1 make demo" in out
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(base + "/connexion").read().decode()
        token = re.search(r'name="jeton" value="([^"]+)"', page)
        assert token
        form = urllib.parse.urlencode({"jeton": token.group(1), "identifiant": "instructeur",
                                       "mot_de_passe": password, "suite": "/paquets"}).encode()
        answer = opener.open(base + "/connexion", data=form)
        assert answer.status == 200 and answer.url.endswith("/paquets")
        assert "Paquets de preuves" in answer.read().decode()
        web = next(s for s in pipeline.started if s.name == "workbench")
    assert not web.alive()  # stopped by its PID with the demo's other processes
