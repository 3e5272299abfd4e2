"""`topfive serve`'s API in-process (Starlette's TestClient): a real photo through efficientnet_lite0,
each error code, concurrent requests batched into one forward pass, the report view's file listing."""

import csv
import http.client
import io
import json
import select
import socket
import subprocess
import sys
import threading
import time
import warnings

import httpx
import pytest
import uvicorn
from PIL import Image

with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2; httpx is what the extra installs
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from conftest import EVAL
from topfive import Classifier, output
from topfive.serve.app import create_app
from topfive.serve.batching import warm_up
from topfive.serve.settings import ServeSettings

PIZZA = "images/pizza/bingmd_pizza_md_000036.jpg"
PHOTOS = [PIZZA, "images/harp/bing_harpe_0039.jpg", "images/cat/asirra_cat_34.jpg",
          "images/violin/bing_violon_0009.jpg", "images/burger/bingmd_burger_md_000049.jpg",
          "images/elephant/a10_elefante_0774da25.jpg"]


def accepted(file: str) -> set[int]:
    with open(EVAL / "manifest.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["file"] == file)
    return {int(i) for i in row["accepted_imagenet_indices"].split()}


def photo(file: str) -> bytes:
    return (EVAL / file).read_bytes()


@pytest.fixture(scope="module")
def client(lite0):
    with TestClient(create_app([lite0], ServeSettings(max_upload_bytes=400_000))) as c:
        yield c


def post(client, data: bytes, name="photo.jpg", kind="image/jpeg", **fields):
    return client.post("/api/classify", files={"image": (name, data, kind)}, data=fields)


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code and body["message"], body
    assert "Traceback" not in response.text


def test_a_photo_gets_the_json_of_classify(client, lite0):
    response = post(client, photo(PIZZA), name="pizza.jpg", top_k="5")
    assert response.status_code == 200, response.text
    [result] = response.json()
    assert result["source"] == "pizza.jpg" and result["model"] == "efficientnet_lite0"
    assert {c["index"] for c in result["top"]} & accepted(PIZZA)
    # The same shape and numbers as `topfive classify --format json` on the file (its source is the path)
    expected = json.loads(output.render_predictions([lite0.predict(str(EVAL / PIZZA))], "json"))[0]
    assert result == {**expected, "source": "pizza.jpg"}
    assert "m0;dur=" in response.headers["server-timing"] and 'desc="efficientnet_lite0"' in response.headers["server-timing"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_top_k_and_models_fields(client):
    response = post(client, photo(PIZZA), top_k="2", models="efficientnet_lite0")
    assert [c["rank"] for c in response.json()[0]["top"]] == [1, 2]


def test_the_type_comes_from_the_bytes_not_the_name(client):
    assert post(client, photo(PIZZA), name="notes.txt", kind="text/plain").status_code == 200
    assert_error(post(client, b"just some text\n" * 50, name="cat.jpg"), 415, "not_an_image")
    assert_error(client.post("/api/classify", json={"image": "x"}), 415, "not_an_image")


def test_too_large_a_body_is_413_with_or_without_its_length(client):
    big = photo("images/pizza/bingmd_pizza_md_000018.jpg")  # 626 KB, over this app's 400 KB
    assert len(big) > 400_000
    assert_error(post(client, big), 413, "too_large")
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))  # sent chunked, without a length
    response = client.post("/api/classify", content=chunks, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(response, 413, "too_large")


def test_too_many_pixels_is_413_before_decoding(client):
    buf = io.BytesIO()
    Image.new("1", (9500, 9500)).save(buf, format="PNG")  # 90.25 MP in a few kB: over the 89.5 MP guard
    assert len(buf.getvalue()) < 400_000
    response = post(client, buf.getvalue(), name="bomb.png", kind="image/png")
    assert_error(response, 413, "too_large")
    assert "90,250,000 pixels exceeds the limit of 89.5 megapixels" in response.json()["message"]


@pytest.mark.parametrize("fields, problem", [
    ({"top_k": "0"}, "top_k"), ({"top_k": "abc"}, "top_k"), ({"top_k": "1001"}, "top_k"),
    ({"top_k": "\u00b2"}, "top_k"), ({"top_k": "5" * 5000}, "top_k"), ({"top_k": "\u0665"}, "top_k"),
    ({"top_k": "1_0"}, "top_k"), ({"top_k": "-1"}, "top_k"),
    ({"models": "resnet50"}, "not served"), ({"models": "../../etc/passwd"}, "not served"),
])
def test_bad_fields_are_422(client, fields, problem):
    response = post(client, photo(PIZZA), **fields)
    assert_error(response, 422, "bad_field")
    assert problem in response.json()["message"]


def test_a_length_too_long_for_int_is_413_and_one_that_is_no_number_400(client):
    response = client.post("/api/classify", content=b"x", headers={"content-length": "9" * 5000})
    assert_error(response, 413, "too_large")
    assert "5000-digit" in response.json()["message"]
    assert_error(client.post("/api/classify", content=b"x", headers={"content-length": "12a"}), 400, "bad_request")


def test_a_form_without_the_photo_is_422(client):
    assert_error(client.post("/api/classify", data={"image": "not a file"},
                             files={"other": ("a.jpg", photo(PIZZA), "image/jpeg")}), 422, "bad_field")


def test_a_cut_short_jpeg_is_422(client):
    data = photo(PIZZA)
    response = post(client, data[: len(data) // 2], name="half.jpg")
    assert_error(response, 422, "corrupt_image")
    assert response.json()["message"].startswith("half.jpg: ")


def test_unknown_routes_and_methods_answer_json(client):
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.get("/api/classify"), 405, "method_not_allowed")


def test_models_and_health(client):
    [model] = client.get("/api/models").json()
    assert model["name"] == "efficientnet_lite0" and model["runtime"] == "onnxruntime" and model["input_size"] == 224
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["models"] == ["efficientnet_lite0"]


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/app.js"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "createImageBitmap" in client.get("/app.js").text
    assert client.get("/style.css").headers["content-type"].startswith("text/css")
    for path in ["/", "/app.js", "/style.css"]:  # nothing is fetched from elsewhere
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_requests_that_arrive_together_share_one_forward_pass(lite0):
    settings = ServeSettings(batch_window_s=0.5)  # long enough for every thread's request to arrive
    with TestClient(create_app([lite0], settings)) as c:
        answers = [None] * len(PHOTOS)

        def send(i):
            answers[i] = post(c, photo(PHOTOS[i]), name=f"{i}.jpg")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(PHOTOS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = c.get("/healthz").json()["batches"]["efficientnet_lite0"]
    alone = lite0.predict([str(EVAL / p) for p in PHOTOS])
    for i, (response, expected) in enumerate(zip(answers, alone)):
        assert response.status_code == 200, response.text
        [result] = response.json()
        assert result["source"] == f"{i}.jpg"
        assert [c["index"] for c in result["top"]] == [c.index for c in expected.top]
        assert result["top"][0]["probability"] == pytest.approx(expected.top[0].probability, abs=1e-5)
    assert stats["images"] == len(PHOTOS) and stats["largest"] >= 2, stats


def test_a_full_queue_answers_503_and_the_admitted_request_goes_on(lite0):
    settings = ServeSettings(max_pending=1, batch_window_s=1.0)
    with TestClient(create_app([lite0], settings)) as c:
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", post(c, photo(PIZZA))))
        t.start()
        deadline = time.monotonic() + 30
        while c.get("/healthz").json()["pending"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = post(c, photo(PIZZA))
        t.join(60)
    assert_error(refused, 503, "busy")
    assert refused.headers["retry-after"] == "1"
    assert first["r"].status_code == 200


@pytest.fixture()
def report_client(lite0, tmp_path):
    (tmp_path / "charts").mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "charts" / "speed.png")
    (tmp_path / "charts" / "leak.png").symlink_to("/etc/passwd")
    (tmp_path / "REPORT.md").write_text(
        "# Study\n\nSome **bold** and `code <b>`.\n\n| model | top-1 |\n| --- | ---: |\n| lite0 | 82.8 |\n\n"
        "![Speed](charts/speed.png)\n\n![gone](charts/missing.png) [elsewhere](http://example.com/x)\n\n"
        "<script>alert(1)</script>\n- one\n- two\n", encoding="utf-8")
    with TestClient(create_app([lite0], ServeSettings(report_dir=tmp_path))) as c:
        yield c


def test_the_report_view_renders_the_report_and_serves_only_its_listed_files(report_client):
    page = report_client.get("/report").text
    assert "<h1>Study</h1>" in page and "<strong>bold</strong>" in page and "<code>code &lt;b&gt;</code>" in page
    assert '<td class="num">82.8</td>' in page and '<img src="/report/files/charts/speed.png"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "example.com" not in page and "missing.png" not in page
    assert report_client.get("/api/report").json() == {"available": True}
    chart = report_client.get("/report/files/charts/speed.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    for name in ["charts/leak.png", "../REPORT.md", "charts/../REPORT.md.bak", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"]:
        assert_error(report_client.get("/report/files/" + name), 404, "not_found")


def test_without_a_report_the_view_says_so(client):
    assert client.get("/api/report").json() == {"available": False}
    assert "No study report" in client.get("/report").text


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, capsys):
    from topfive.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what `import uvicorn` does when it is not installed
    assert main(["serve"]) == 2
    assert "pip install 'topfive[web]'" in capsys.readouterr().err


def test_help_loads_neither_torch_nor_the_web_packages():
    code = ("import sys, contextlib, io\nfrom topfive.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit): main(['serve', '--help'])\n"
            "print(sorted(m for m in ('torch', 'starlette', 'uvicorn') if m in sys.modules), '--queue' in out.getvalue())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[] True", done.stderr


class FailsAfterWarmUp:
    """A runtime whose forward pass breaks once the server is up: the request must get JSON, not a trace."""

    name, precision, device = "broken", "fp32", "cpu"

    def __init__(self, runtime):
        self.runtime, self.calls = runtime, 0

    def probabilities(self, batch):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("kernel exploded at /secret/path/model.onnx")
        return self.runtime.probabilities(batch)


def test_a_model_that_fails_answers_500_json_without_a_traceback(lite0):
    broken = Classifier.around(FailsAfterWarmUp(lite0.runtime), "broken", lite0.spec)
    warm_up(broken)  # as `topfive serve` does before it serves
    with TestClient(create_app([broken]), raise_server_exceptions=False) as c:
        response = post(c, photo(PIZZA))
    assert_error(response, 500, "internal")
    assert "secret" not in response.text and "RuntimeError" in response.text


def test_serve_refuses_a_model_it_cannot_load(capsys):
    from topfive.cli import main

    assert main(["serve", "--models", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert "no_such_model" in err and "Traceback" not in err


def test_serve_stops_with_one_line_when_a_model_fails_its_first_pass(monkeypatch, capsys):
    from topfive.cli import main

    def fails(self, *args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code\n  at kernel.cc:42")

    monkeypatch.setattr(Classifier, "predict", fails)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("the server was started"))
    assert main(["serve", "--models", "efficientnet_lite0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("topfive: error: efficientnet_lite0: "), err
    assert "RuntimeError: [ONNXRuntimeError] : 6" in err and "kernel.cc" not in err and "Traceback" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stalled_upload_gets_408_and_holds_no_place_at_the_models(lite0):
    """Over real sockets (the TestClient sends a body whole): with room for one request at the
    models, an upload that stops half-way must not keep a complete one out."""
    timeout = 3.0
    port = free_port()
    app = create_app([lite0], ServeSettings(max_pending=1, upload_timeout_s=timeout))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        with socket.create_connection(("127.0.0.1", port), timeout=timeout + 10) as stalled, \
                httpx.Client(base_url=url, trust_env=False, timeout=30) as web:
            stalled.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
            while web.get("/healthz").json()["uploads"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            answer = web.post("/api/classify", files={"image": ("pizza.jpg", photo(PIZZA), "image/jpeg")})
            assert select.select([stalled], [], [], 0)[0] == [], "the stalled upload was answered first"
            assert answer.status_code == 200, answer.text
            reply = http.client.HTTPResponse(stalled)
            reply.begin()
            assert reply.status == 408 and reply.getheader("content-type") == "application/json"
            assert json.loads(reply.read())["error"] == "timeout"
            health = web.get("/healthz").json()
        assert health["uploads"] == 0 and health["pending"] == 0, health
    finally:
        server.should_exit = True
        thread.join(10)


def test_draft_decodes_the_upload_as_classify_draft_does(lite0):
    big = "images/harp/bing_harpe_0103.jpg"  # 1333 x 2000: large enough for a reduced DCT scale
    drafted = Classifier.around(lite0.runtime, lite0.name, lite0.spec, draft=True)
    with TestClient(create_app([lite0], ServeSettings(draft_size=lite0.draft_size()))) as c:
        [result] = post(c, photo(big), name="harp.jpg").json()
    [expected] = json.loads(output.render_predictions([drafted.predict(str(EVAL / big))], "json"))
    assert result == {**expected, "source": "harp.jpg"}
    assert result["top"][0]["probability"] != lite0.predict(str(EVAL / big)).top[0].probability


def test_serve_refuses_another_decoder(capsys):
    from topfive.cli import main

    assert main(["serve", "--decode", "tensor"]) == 2
    assert "--decode does not apply" in capsys.readouterr().err
