"""The explorer in a real JupyterLab, driven headless in Chromium through Playwright.

The test starts JupyterLab on a free loopback port (no token, isolated config and runtime
folders), opens the explorer notebook with the CI profile's parameters injected, runs every
cell, and checks that the widgets render and that choosing another measure redraws the
heatmap. It skips only where Chromium or Playwright is missing (``.ci/run`` installs both).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workbench import reproduce

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

KERNEL_IDLE = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return kernel && kernel.connectionStatus === "connected" && kernel.status === "idle";
}"""

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} within {seconds} s")


@pytest.fixture()
def jupyterlab(tmp_path, data_root, model_cache, trained):
    """A JupyterLab serving ``tmp_path/work`` with the parametrised explorer notebook in it."""
    import papermill

    trained("lenet5")  # the kernel loads the session's checkpoint instead of training
    work = tmp_path / "work"
    work.mkdir()
    profile = reproduce.load_profile("ci", notebooks_dir=REPO / "notebooks")
    notebook = REPO / "notebooks" / "explorer.ipynb"
    parameters = reproduce.notebook_parameters(notebook, profile,
                                               figures_dir=tmp_path / "figures")
    papermill.execute_notebook(str(notebook), str(work / "explorer.ipynb"),
                               parameters=parameters, prepare_only=True, progress_bar=False)
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "WORKBENCH_DATA": str(data_root), "WORKBENCH_CACHE": str(model_cache),
           "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
           "JUPYTER_PLATFORM_DIRS": "1", "PYTHONWARNINGS": "ignore"}
    port = _free_port()
    log = (tmp_path / "jupyterlab.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={work}", "--ServerApp.allow_root=True",
         "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
         "--LabApp.expose_app_in_browser=True"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status", process, 90)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        process.send_signal(signal.SIGINT)  # JupyterLab's clean stop: shuts its kernels down
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_explorer_renders_and_reacts_in_jupyterlab(jupyterlab):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); "
                    ".ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install playwright)")
    url, tmp_path = jupyterlab
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab/tree/explorer.ipynb")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.wait_for_function(KERNEL_IDLE)
            page.locator(".jp-Notebook").first.click()
            # not awaited: the command's promise settles only when every cell has run
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            status = page.locator(".widget-html", has_text="test inputs")
            status.wait_for()
            assert "ochiai" in status.inner_text()
            heatmap = page.locator(".widget-image").first
            heatmap.wait_for()
            page.wait_for_function(
                "() => { const i = document.querySelector('.widget-image');"
                " return i && i.naturalWidth > 100; }")
            assert page.locator(".widget-dropdown select").count() >= 5
            before = heatmap.get_attribute("src")

            measure = page.locator(".widget-dropdown", has_text="measure").locator("select")
            measure.select_option(label="KMNC: k-multisection coverage (fraction of k sections)")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.widget-html')]"
                ".some(e => e.innerText.includes('mean kmnc'))")
            page.wait_for_function(
                "(before) => document.querySelector('.widget-image').src !== before", arg=before)
            errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']")
            assert "Traceback" not in " ".join(errors.all_inner_texts())
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))  # kept with the test's tmp_path
            raise
        finally:
            browser.close()
