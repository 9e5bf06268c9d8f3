"""Meta parameters in the web view: hidden from runs tables unless asked for, and apart
from the parameters that differ in a comparison (what a reader sees: the page's text)."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from xpm import tag
from xpm._experiment import experiment
from xpm.datasette._app import make_datasette

RUNS = "/-/xpm/experiment/meta?task=xpm_test_tasks.learn"
# Learn's Meta parameters: gpus, counter, hold, model_path; its model's: device.
META = {"param:gpus", "param:counter", "param:hold", "param:model_path", "param:model.device"}


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str]]:
    """Two Learn jobs (n_layers 1 and 2, tagged), and their ids."""
    from xpm_test_tasks import Learn, Model

    workdir = tmp_path_factory.mktemp("meta") / "wd"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "meta", progress=False):
            for n in (1, 2):
                Learn(model=Model(n_layers=tag(n)), epochs=2).submit()
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        ids = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id")]
    finally:
        conn.close()
    return make_datasette(workdir), ids


def page(ds: Any, path: str) -> str:
    async def go() -> Any:
        return await ds.client.get(path)

    response = asyncio.run(go())
    assert response.status_code == 200, response.text[-2000:]
    return str(response.text)


def headers(text: str) -> list[str]:
    """The column keys of the runs table, in order."""
    head = text[text.index('id="xpm-runs"') :].split("</thead>")[0]
    return re.findall(r'<th data-key="([^"]+)"', head)


def toggle(text: str) -> tuple[str, str]:
    """The Meta toggle's link and text."""
    found = re.search(r'<a id="xpm-meta-toggle" href="([^"]+)">([^<]+)</a>', text)
    assert found, text[-3000:]
    return html.unescape(found.group(1)), found.group(2)


def test_runs_table_hides_meta_parameters_until_asked(learned: tuple[Any, list[str]]) -> None:
    ds, _ids = learned
    text = page(ds, RUNS)
    shown = headers(text)
    # The tagged parameter model.n_layers is its tag's column (one setting, shown once).
    assert {"param:epochs", "tag:n_layers"} <= set(shown)
    assert "param:model.n_layers" not in shown
    assert not META & set(shown)
    link, label = toggle(text)
    assert label == "show 5 Meta parameters" and "meta=1" in link

    text = page(ds, link)
    shown = headers(text)
    assert set(shown) >= META
    # After the other parameters, under their own group heading.
    first_meta = min(shown.index(k) for k in META)
    assert shown.index("param:epochs") < first_meta
    groups = text[text.index('class="xpm-groups"') :].split("</tr>")[0]
    assert groups.index(">parameters<") < groups.index(">Meta parameters<")
    link, label = toggle(text)
    assert label == "hide Meta parameters" and "meta=1" not in link
    # Sorting and filtering keep the choice.
    text = page(ds, RUNS + "&meta=1&sort=-param:gpus&where=n_layers%3D2")
    assert set(headers(text)) >= META and "meta=1" in text.split('data-key="param:epochs"')[1]


def test_compare_lists_meta_parameters_apart_and_last(learned: tuple[Any, list[str]]) -> None:
    ds, ids = learned
    text = page(ds, f"/-/xpm/compare?id={ids[0][:12]}&id={ids[1][:12]}")

    def keys(section: str) -> list[str]:
        body = text[text.index(f'id="{section}"') :].split("</tbody>")[0]
        return re.findall(r'<tr data-key="([^"]+)"', body)

    # model_path differs for every job (it is in the job's directory): it is Meta, so it
    # is not a difference between the jobs.
    assert keys("xpm-compare-params") == ["param:model.n_layers"]
    assert "param:epochs" in keys("xpm-compare-same")
    assert not {k.replace("param:", "meta:") for k in META} - set(keys("xpm-compare-meta"))
    assert text.index('id="xpm-compare-same"') < text.index('id="xpm-compare-meta"')
    meta = text[text.index('id="xpm-compare-meta"') :].split("</tbody>")[0]
    assert "Meta parameters" in meta
    row = meta.split('data-key="meta:model_path"')[1].split("</tr>")[0]
    assert row.count("<td") == 2  # its two values side by side


def test_meta_flag_of_jobs_recorded_before_schema_5_reads_as_a_parameter(
    learned: tuple[Any, list[str]], tmp_path: Path
) -> None:
    """No flag (NULL): the parameter is shown as any other, and no toggle is offered."""
    ds, _ids = learned
    workdir = tmp_path / "wd"
    shutil.copytree(Path(ds.databases["xpm"].path).parent, workdir)
    conn = sqlite3.connect(workdir / "xpm.db")
    with conn:
        conn.execute("UPDATE params SET meta = NULL")
    conn.close()
    text = page(make_datasette(workdir), RUNS)
    assert set(headers(text)) >= META and 'id="xpm-meta-toggle"' not in text
