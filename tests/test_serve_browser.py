"""The page of `topfive serve` end to end in a real browser: Debian's Chromium, headless, driven by
Playwright, against `topfive serve` on a loopback port with efficientnet_lite0 and a TFLite card."""

import csv
import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import EVAL, SHARED
from topfive.imagenet import classes

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
CARD = SHARED / "models" / "mobilenet_v2_1.0_224_quant.tflite.json"
HARP = "images/harp/bing_harpe_0155.jpg"  # both models put harp first (checked when this test was written)


def accepted(file: str) -> set[int]:
    with open(EVAL / "manifest.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["file"] == file)
    return {int(i) for i in row["accepted_imagenet_indices"].split()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`topfive serve` itself, in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    command = [sys.executable, "-m", "topfive", "serve", "--models", f"efficientnet_lite0,{CARD}",
               "--port", str(port), "--report", str(tmp_path_factory.mktemp("no_report"))]
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # no proxy, whatever the env says
                conn.request("GET", "/healthz")
                models = json.loads(conn.getresponse().read())["models"]
                conn.close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"topfive serve did not start: {log.read_text()}")
                time.sleep(0.2)
        yield url, models
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
                    "Playwright cannot download its own browsers here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def upright_copy_with_exif_rotation(source: Path, target: Path) -> tuple[int, int]:
    """The photo stored turned a quarter anticlockwise, with EXIF orientation 6 (turn it clockwise to
    show it): upright it is the original. Returns the upright size."""
    img = Image.open(source).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(target, quality=95, exif=exif.tobytes())
    return img.size


def test_drop_a_photo_and_see_each_models_top5(server, browser, tmp_path):
    url, models = server
    expected = {classes()[i].name for i in accepted(HARP)}
    rotated = tmp_path / "harp_rotated.jpg"
    width, height = upright_copy_with_exif_rotation(EVAL / HARP, rotated)
    assert width != height

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("#models input", state="attached")
    assert page.locator("#models input").count() == 2

    for photo in [EVAL / HARP, rotated]:
        page.set_input_files("#file", str(photo))
        page.wait_for_function(
            "name => document.querySelectorAll('#results article.model').length === 2 && "
            "document.getElementById('photo-note').textContent.startsWith(name)", arg=photo.name, timeout=30_000)
        assert models == ["efficientnet_lite0", "mobilenet_v2_1.0_224_quant"]
        for model in models:
            card = page.locator(f'article.model[data-model="{model}"]')
            names = card.locator("li .name").all_text_contents()
            assert len(names) == 5 and expected & set(names), (model, names)
            assert " ms " in card.locator(".meta").text_content()
        assert "harp (594): 2 of 2" in page.locator("#agree-text").text_content()
        assert page.locator("li.agree").count() >= 2  # harp is marked in both lists
        canvas = page.locator("#preview")
        # drawn upright, as the decoder classified it: the EXIF-rotated copy has the original's shape
        assert (int(canvas.get_attribute("data-width")), int(canvas.get_attribute("data-height"))) == (width, height)

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []  # no script error, no request the Content-Security-Policy refused
    assert requests and all(r.startswith(url + "/") for r in requests), requests
    page.close()


def test_a_file_that_is_not_an_image_shows_the_servers_reason(server, browser, tmp_path):
    url, _ = server
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo\n" * 20)
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#models input", state="attached")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#status.error")
    assert "415" in page.locator("#status").text_content() and "not a recognised image" in page.locator("#status").text_content()
    page.close()
