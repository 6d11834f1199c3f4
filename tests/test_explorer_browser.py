"""The explorer in a real JupyterLab, driven headless in Chromium through Playwright.

The test starts JupyterLab on a free loopback port (no token, isolated config and runtime
folders), opens the explorer notebook with the CI profile's parameters injected, runs every
cell, and uses the explorer as a researcher would: it sees "loading" before the set-up ends,
hovers over the heatmap and reads a cell, clicks it and sees that neuron selected, reads the
flat-row note, chooses a class (the control never blank), another measure (the heatmap
redraws), and synthesises (a placeholder, never a broken image, before). It skips, saying how to
get them, where Chromium (Debian/Ubuntu: ``apt-get install chromium``) or Playwright is missing;
``.ci/run`` installs both.
"""

import json
import os
import re
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

SHOWN = "s => s.options[s.selectedIndex].text.replace(/\\s/g, ' ')"  # a select's shown text

pytestmark = [
    pytest.mark.real_data, pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=(
        "the explorer's browser test needs Chromium, not installed here: "
        "`apt-get install chromium` (Debian/Ubuntu; .ci/run installs it)")),
]


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
def jupyterlab(tmp_path, notebook_env, trained):
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
    env = {**os.environ,  # notebook_env: the data root, the checkpoints, the compilation cache
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
        # SIGTERM is JupyterLab's clean stop without a prompt (SIGINT asks "Shutdown this
        # Jupyter server?" and waits): it shuts its kernels down.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _html(page, text: str):
    return page.locator(".widget-html", has_text=text)


def _dropdown(page, description: str):
    return page.locator(f".widget-dropdown:has(> label:text-is('{description}')) select")


def _hover_a_cell(page, canvas) -> tuple[str, int]:
    """Moves the mouse down the middle of the heatmap until the footer names a cell."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    footer = page.locator(".jupyter-matplotlib-footer").first
    for fraction in (0.55, 0.65, 0.45, 0.75, 0.35, 0.25):
        page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + fraction * box["height"])
        for _ in range(20):  # the kernel answers each move with the footer's text
            match = re.match(r"(\w+)\[(\d+)\]", footer.inner_text())
            if match:
                return match.group(1), int(match.group(2))
            page.wait_for_timeout(250)
    raise AssertionError("no heatmap cell reported under the mouse")


def test_explorer_renders_and_reacts_in_jupyterlab(jupyterlab):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test needs Playwright: pip install playwright "
        "(uses Debian's Chromium; never `playwright install`)")
    url, tmp_path = jupyterlab
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1200})
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab/tree/explorer.ipynb")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            page.wait_for_function(KERNEL_IDLE)
            page.locator(".jp-Notebook").first.click()
            # not awaited: the command's promise settles only when every cell has run
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            # displayed first, set up after: "loading" shows while the model is set up
            _html(page, "loading lenet5").wait_for()
            status = _html(page, "test accuracy")
            status.wait_for()
            assert "ochiai" in status.inner_text()
            page.locator(".jp-OutputArea-output", has_text="highest ochiai").wait_for()
            page.wait_for_function(KERNEL_IDLE)
            canvas = page.locator(".jupyter-matplotlib-canvas-div canvas").first
            canvas.wait_for()
            assert canvas.bounding_box()["height"] > 150  # not a thin strip
            assert _html(page, "one flat colour").count() == 1  # the conv rows explained

            # hover names a cell; a click selects it and the panels follow
            site, index = _hover_a_cell(page, canvas)
            placeholder = "Press synthesise to raise"
            page.mouse.down()
            page.mouse.up()
            _html(page, f"selected {site}[{index}]").wait_for()
            _html(page, f"{placeholder} {site}[{index}]").wait_for()
            assert page.locator(".widget-text input").first.input_value() == str(index)

            # no label cut off, no broken image before "synthesise"
            button = page.get_by_role("button", name="select the highest")
            assert button.evaluate("b => b.scrollWidth <= b.clientWidth")
            measure = _dropdown(page, "measure")
            assert measure.evaluate("""s => {
                const c = document.createElement('canvas').getContext('2d');
                c.font = getComputedStyle(s).font;
                return [...s.options].every(o => c.measureText(o.text).width + 20 <= s.clientWidth);
            }""")
            assert page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea img')]
                .every(i => i.offsetParent === null || (i.complete && i.naturalWidth > 0))""")

            # the class control: "all classes" shown, then a class, never blank
            label = _dropdown(page, "class")
            assert label.evaluate(SHOWN) == "all classes"
            label.select_option(index=4)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.widget-html')].some(e => "
                "/; \\d+ test inputs/.test(e.innerText) && !e.innerText.includes('; 500 test'))")
            assert label.evaluate(SHOWN).startswith("3")

            # another measure redraws the heatmap
            before = canvas.evaluate("c => c.toDataURL()")
            measure.select_option(label="KMNC: k-multisection coverage (fraction of k sections)")
            _html(page, "mean kmnc").wait_for()
            page.wait_for_function("([c, before]) => c.toDataURL() !== before",
                                   arg=[canvas.element_handle(), before])

            # synthesis: the placeholder gives way to the seeds and synthesised inputs
            images = page.locator(".widget-image")
            shown = images.count()
            page.locator("button.widget-button", has_text="synthesise").click()
            page.wait_for_function(
                "(n) => [...document.querySelectorAll('.widget-image')]"
                ".filter(i => i.offsetParent !== null && i.naturalWidth > 100).length > n",
                arg=shown - 1)
            page.wait_for_function(  # the placeholder gone
                "() => ![...document.querySelectorAll('.widget-html')]"
                ".some(e => e.offsetParent !== null && e.innerText.includes('to raise'))")
            errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']")
            assert "Traceback" not in " ".join(errors.all_inner_texts())
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
