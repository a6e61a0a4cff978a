"""The web page in a real browser (Debian chromium + selenium): upload a synthetic video through the
page, read the per-minute table off the page and hold it against the truth and the database; bad
input; the library; the query tab; and a gradio_client script calling `/analyze`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from procs import BIN, free_port, stop, wait_for

from laughtrack import media
from laughtrack.synthetic import demo, synth
from laughtrack.records import MinuteRow
from laughtrack.store import open_store

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(900)]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
MAX_UPLOAD_MB = 3
QUERY_LIMIT_S = 5
TALK = {"duration_s": 75.3, "seed": 51, "segments": [
    {"start_s": 0, "end_s": 20.2, "kind": "speech"}, {"start_s": 20.2, "end_s": 24.5, "kind": "laughter"},
    {"start_s": 25, "end_s": 55.4, "kind": "speech"}, {"start_s": 57.1, "end_s": 63.3, "kind": "applause"},
    {"start_s": 63.3, "end_s": 70, "kind": "speech"}, {"start_s": 70.2, "end_s": 74.1, "kind": "laughter"}]}


@pytest.fixture(scope="module")
def ui(tmp_path_factory, prefect_server):
    """`laughtrack ui` on a free port, in a process of its own (the session's Prefect server)."""
    from prefect.settings import PREFECT_API_URL
    work = tmp_path_factory.mktemp("ui")
    port = free_port()
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), HOME=str(work / "home"),
               GRADIO_TEMP_DIR=str(work / "gradio"), PREFECT_LOCAL_STORAGE_PATH=str(work / "storage"),
               LAUGHTRACK_QUERY_TIMEOUT_S=str(QUERY_LIMIT_S))
    db = work / "ui.duckdb"
    proc = subprocess.Popen([BIN / "laughtrack", "ui", "--db", str(db), "--model", "fixture", "--port", str(port),
                             "--cache", str(work / "cache"), "--max-upload-mb", str(MAX_UPLOAD_MB)],
                            env=env, cwd=work, stdout=open(work / "ui.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"

    def up():
        import urllib.request
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail((work / "ui.log").read_text()[-3000:])
    try:
        wait_for(up, 180, what="the page to answer")
        yield url, db, work
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian chromium and chromium-driver are needed: `make test` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,2200", "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):   # offline: only the page
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def by(driver, css: str):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, css)


def table(driver, root: str) -> list[list[str]]:
    """A gr.Dataframe's rows in display order, as the page shows them."""
    rows = sorted(by(driver, f"{root} div[role=row].virtual-row"), key=lambda r: int(r.get_attribute("data-index")))
    from selenium.webdriver.common.by import By
    return [[c.text for c in r.find_elements(By.CSS_SELECTOR, "div[role=gridcell]")] for r in rows]


def settled(read):
    """`read()`, or None while the page is still redrawing what it reads."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        return read()
    except StaleElementReferenceException:
        return None


def upload(driver, url: str, path: Path) -> None:
    driver.get(url)
    wait_for(lambda: by(driver, "#media input[type=file]"), 60, what="the upload box")
    by(driver, "#media input[type=file]")[0].send_keys(str(path))
    wait_for(lambda: by(driver, "#media a[data-testid=download-link]"), 60, what="the upload to finish")
    by(driver, "#analyse")[0].click()


def toast(driver) -> str:
    found = wait_for(lambda: [t.text for t in by(driver, "[data-testid=toast-body]") if t.text.strip()], 120,
                     what="a message on the page")
    return " ".join(found)


def render(tmp_path_factory, name: str, seed: int) -> Path:
    path = tmp_path_factory.mktemp("ui-media") / name
    synth.render_to(synth.parse_timeline(dict(TALK, seed=seed)), path)
    return path


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    return render(tmp_path_factory, "talk.mp4", 51)


def video_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def analysed(ui, talk):
    """`talk.mp4` analysed through the API endpoint, as a gradio_client script does it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")    # gradio_client would otherwise look up huggingface.co
    from gradio_client import Client, handle_file
    return Client(ui[0], verbose=False).predict(handle_file(str(talk)), "auto", api_name="/analyze")


def test_an_upload_through_the_page_shows_the_truth_and_the_database(ui, browser, tmp_path_factory, artifacts):
    url, db, _ = ui
    fresh = render(tmp_path_factory, "fresh talk.mp4", 52)
    t0 = time.monotonic()
    upload(browser, url, fresh)
    wait_for(lambda: table(browser, "#minutes"), 600, step=1, what="the per-minute table")
    took = time.monotonic() - t0
    shown = table(browser, "#minutes")
    truth = synth.read_truth(fresh.with_suffix(".truth.json"))
    got = [MinuteRow(int(r[0]), float(r[1]), float(r[2]), int(r[3]), int(r[4]), float(r[5]), 0.0) for r in shown]
    errors = demo.minute_errors(truth, got)["minute_errors"]
    assert len(got) == len(truth) and max(errors) <= 2.0, (got, truth)
    stored = open_store(db).minute_table([r[0] for r in open_store(db).query(
        "SELECT analysis_id FROM engagement WHERE video_id = ?", [video_id(fresh)])[1]])
    assert [(m.minute, m.laughter_s, m.applause_s, m.laughter_count, m.applause_count, m.speech_s)
            for m in stored] == [(g.minute, g.laughter_s, g.applause_s, g.laughter_count, g.applause_count, g.speech_s)
                                 for g in got]
    lines = wait_for(lambda: table(browser, "#transcript"), 60, what="the transcript")
    assert lines and all(re.fullmatch(r"\d+:\d\d\.\d", at) for at, _ in lines), lines
    assert any("[laughter" in line for _, line in lines) and not any("<|" in line for _, line in lines), lines
    wait_for(lambda: by(browser, "#timeline svg") and by(browser, "#chart img"), 60, what="the charts")
    assert by(browser, "#title a[href*='report.html']"), "no link to the full report"
    buttons = wait_for(lambda: by(browser, "#moments button"), 60, what="the moment buttons")
    buttons[0].click()
    first = open_store(db).query("SELECT start_s FROM top_moments WHERE rank = 1 AND video_id = ?",
                                 [video_id(fresh)])[1][0][0]
    position = wait_for(lambda: browser.execute_script(
        "const v = document.querySelector('#player video'); return v && v.currentTime > 0 ? v.currentTime : null"),
        60, what="the player to seek")
    assert abs(position - max(0, first - 1)) < 0.6, (position, first)
    browser.save_screenshot(str(artifacts / "ui-analyse.png"))
    (artifacts / "ui-timing.txt").write_text(f"upload → per-minute table on the page: {took:.1f} s (75 s video)\n")


def test_a_known_file_is_answered_without_a_new_analysis(ui, browser, talk, analysed):
    url, db, _ = ui
    before = open_store(db).query("SELECT count(*) FROM analyses")[1][0][0]
    upload(browser, url, talk)
    wait_for(lambda: table(browser, "#minutes"), 300, step=1, what="the per-minute table")
    assert open_store(db).query("SELECT count(*) FROM analyses")[1][0][0] == before


@pytest.mark.parametrize("name, make, message", [
    ("empty.mp4", lambda p: p.write_bytes(b""), "empty file"),
    ("notes.mp4", lambda p: p.write_text("not a video\n"), "not a readable media file"),
    ("silent.mp4", lambda p: media._run(["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=2", "-c:v",
                                          "mpeg4", str(p)], p, "write"), "no audio stream"),
    ("huge.wav", lambda p: p.write_bytes(b"\0" * ((MAX_UPLOAD_MB + 1) << 20)), "exceed"),
])
def test_bad_input_is_one_message_and_nothing_is_stored(ui, browser, tmp_path, name, make, message):
    url, db, _ = ui
    path = tmp_path / name
    make(path)
    count = (lambda: open_store(db).query("SELECT (SELECT count(*) FROM analyses) + (SELECT count(*) FROM failures)")
             [1][0][0] if db.exists() else 0)
    before = count()
    browser.get(url)
    wait_for(lambda: by(browser, "#media input[type=file]"), 60, what="the upload box")
    by(browser, "#media input[type=file]")[0].send_keys(str(path))
    if message != "exceed":
        wait_for(lambda: by(browser, "#media a[data-testid=download-link]"), 60, what="the upload to finish")
        by(browser, "#analyse")[0].click()
    text = toast(browser)
    assert message in text and (name in text or message == "exceed"), text
    assert count() == before
    browser.get(url)                      # the app keeps serving
    assert wait_for(lambda: by(browser, "#analyse"), 60, what="the page again")


def test_the_library_shows_a_page_without_analysing_again(ui, browser, analysed):
    url, db, _ = ui
    before = open_store(db).query("SELECT count(*) FROM analyses")[1][0][0]
    browser.get(url)
    wait_for(lambda: by(browser, "#tab-library-button"), 60, what="the tabs")[0].click()
    wait_for(lambda: table(browser, "#board"), 60, what="the leaderboard")
    board = table(browser, "#board")
    assert len(board) >= 1
    assert not [c for r in board for c in r if re.fullmatch(r"-?\d+\.\d{3,}", c)], board   # no 49.00000000000001
    by(browser, "#pick input")[0].click()
    wait_for(lambda: by(browser, "li[role=option]"), 30, what="the videos in the list")[0].click()
    by(browser, "#show")[0].click()
    wait_for(lambda: table(browser, "#minutes"), 120, step=1, what="the picked video's table")
    assert open_store(db).query("SELECT count(*) FROM analyses")[1][0][0] == before


def test_the_query_tab_reads_and_refuses_writes(ui, browser, analysed, artifacts):
    from selenium.webdriver.common.keys import Keys
    url, db, _ = ui
    browser.get(url)
    wait_for(lambda: by(browser, "#tab-query-button"), 60, what="the tabs")[0].click()
    assert "engagement" in by(browser, "#schema")[0].text

    def run(sql: str) -> None:
        editor = by(browser, "#sql .cm-content")[0]
        editor.click()
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(sql)
        by(browser, "#run-sql")[0].click()
    run("SELECT count(*) AS analyses FROM analyses")
    rows = wait_for(lambda: table(browser, "#result"), 60, what="the result")
    browser.save_screenshot(str(artifacts / "ui-query.png"))
    expected = open_store(db).query("SELECT count(*) FROM analyses")[1][0][0]
    assert rows == [[str(expected)]] and "analyses" in by(browser, "#result")[0].text
    assert by(browser, "#csv")[0].is_displayed()
    run("DELETE FROM videos")
    assert "read-only" in toast(browser)


def test_a_gradio_client_script_calls_analyze(ui, talk, analysed):
    url, db, _ = ui
    transcript, minutes, rich = analysed
    assert isinstance(transcript, str) and minutes["headers"] == ["minute", "laughter_s", "applause_s", "laughs",
                                                                  "applause_bursts", "speech_s"]
    stored = open_store(db).query("SELECT d.minute, d.laughter_s, d.applause_s, d.laughter_count, d.applause_count, "
                                  "d.speech_s FROM minute_density d JOIN engagement e USING (analysis_id) "
                                  "WHERE e.video_id = ? ORDER BY d.minute", [video_id(talk)])[1]
    assert [tuple(r) for r in minutes["data"]] == [tuple(r) for r in stored]
    truth = synth.read_truth(talk.with_suffix(".truth.json"))
    got = [MinuteRow(r[0], r[1], r[2], r[3], r[4], r[5], 0.0) for r in minutes["data"]]
    assert max(demo.minute_errors(truth, got)["minute_errors"]) <= 2.0


def file_data(path) -> dict:
    """What a gradio_client script may send for a file: any path it likes."""
    return {"path": str(path), "orig_name": "x.mp4", "meta": {"_type": "gradio.FileData"}}


def test_a_path_the_page_was_not_given_is_refused_never_copied_nor_served(ui, talk, tmp_path):
    """A server file named by its path (outside Gradio's upload folder, through `..`, or through a
    symlink inside it) is refused at the door, with one message that says nothing of what exists
    there: nothing is copied, analysed or served."""
    import urllib.error
    import urllib.request
    url, db, work = ui
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(talk.read_bytes() + b"secret")       # a real video: the old page analysed it
    upload_dir = work / "gradio"
    upload_dir.mkdir(exist_ok=True)
    (upload_dir / "link.mp4").symlink_to(secret)
    copies = lambda: sorted(p for p in work.rglob("*") if p.name.startswith("secret"))   # noqa: E731
    before = copies()
    said = set()
    # as a script on another machine sends it (gradio_client on this one would upload the file itself)
    for path in (secret, tmp_path / "missing.mp4", tmp_path, "/etc/passwd", f"{upload_dir}/../../{secret.name}",
                 upload_dir / "link.mp4", "http://127.0.0.1:1/x.mp4"):
        request = urllib.request.Request(f"{url}gradio_api/queue/join", method="POST",
                                         data=json.dumps({"data": [file_data(path), "auto"], "fn_index": 0,
                                                          "session_hash": "adversary"}).encode(),
                                         headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        said.add((refused.value.code, refused.value.read().decode()))
    assert said == {(403, json.dumps({"detail": "the page analyses only files uploaded or recorded through it"}))}
    assert copies() == before
    assert open_store(db).query("SELECT count(*) FROM videos WHERE sha256 = ?",
                                [hashlib.sha256(secret.read_bytes()).hexdigest()])[1] == [(0,)]
    for path in (secret, "/etc/passwd", db):
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=10)
        assert denied.value.code in (403, 404)


def test_a_runaway_query_stops_within_its_limit_and_the_page_keeps_analysing(ui, tmp_path_factory, analysed):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    url, db, _ = ui
    client = Client(url, verbose=False)
    t0 = time.monotonic()
    job = client.submit("SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000) b", api_name="/query")
    fresh = render(tmp_path_factory, "during a query.mp4", 53)
    _, minutes, _ = client.predict(handle_file(str(fresh)), "auto", api_name="/analyze")
    assert minutes["data"], "the analysis made while the query ran gave no minutes"
    with pytest.raises(AppError, match="time limit"):
        job.result(timeout=120)
    assert time.monotonic() - t0 < QUERY_LIMIT_S + 60
    assert open_store(db).query("SELECT count(*) FROM engagement WHERE video_id = ?", [video_id(fresh)])[1] == [(1,)]


def test_the_timed_transcript_marks_each_laugh_and_applause_where_it_happened(ui, talk, analysed):
    """`/analyze`'s transcript: a sound line within 0.5 s of each laugh and applause of the truth,
    no line of speech across one, the same items as text (times first) and as JSON."""
    text, _, rich = analysed
    truth = synth.read_truth(talk.with_suffix(".truth.json"))
    sounds = [i for i in rich if i["kind"] == "sound"]
    for seg in TALK["segments"]:
        if seg["kind"] in ("laughter", "applause"):
            label = seg["kind"].capitalize()
            assert [s for s in sounds if s["label"] == label and abs(s["start_s"] - seg["start_s"]) <= 0.5], \
                (seg, sounds)
    for item in rich:                   # words said over a sound's edge may touch it; none runs across one
        if item["kind"] == "speech":
            assert item["words"] and not [s for s in sounds if s["label"] in ("Laughter", "Applause") and
                                          item["start_s"] < (s["start_s"] + s["end_s"]) / 2 < item["end_s"]]
    assert [line.split("  ", 1)[1] for line in text.splitlines()] == [i["text"] for i in rich]
    assert truth and re.match(r"0:\d\d\.\d  ", text)


def test_a_click_on_a_transcript_line_plays_the_video_from_there(ui, browser, talk, analysed, artifacts):
    from selenium.webdriver.common.by import By
    url, _, _ = ui
    upload(browser, url, talk)
    wait_for(lambda: table(browser, "#transcript"), 300, step=1, what="the transcript")
    _, _, rich = analysed
    target = next(i for i in rich if i["kind"] == "speech" and i["start_s"] > 20)

    def click_line() -> bool:            # the table may draw its rows again as it settles: find them afresh
        from selenium.common.exceptions import StaleElementReferenceException
        try:
            row = next(r for r in by(browser, "#transcript div[role=row].virtual-row")
                       if target["words"][:20] in r.text)
            row.find_elements(By.CSS_SELECTOR, "div[role=gridcell]")[1].click()
            return True
        except (StaleElementReferenceException, StopIteration):
            return False
    wait_for(click_line, 60, what="a click on the line")
    position = wait_for(lambda: browser.execute_script(
        "const v = document.querySelector('#player video'); return v && v.currentTime > 0 ? v.currentTime : null"),
        60, what="the player to seek")
    assert abs(position - target["start_s"]) < 0.6, (position, target)
    browser.save_screenshot(str(artifacts / "ui-transcript-seek.png"))
    by(browser, "#plain input")[0].click()
    wait_for(lambda: settled(lambda: (lambda rows: rows and not any("[" in line for _, line in rows))(
        table(browser, "#transcript"))), 60, what="the plain text")
