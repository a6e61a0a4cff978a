"""Reports: every number equals its SQL, pages render in real headless Chromium, charts are real
PNGs, and edge cases (no laughter, a 10-second video) still read sensibly."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib import image as mpimg
from procs import wait_for
from typer.testing import CliRunner

from laughtrack.synthetic import synth
from laughtrack.config import RunConfig
from laughtrack.store import open_store
from laughtrack.store.records import ReportTarget
from laughtrack_cli.main import app
from reports.html import clock, num
from reports.site import page_href, page_path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.usefixtures("prefect_server")

TIMELINES = {
    "lively": {"duration_s": 75.3, "seed": 31, "segments": [
        {"start_s": 0, "end_s": 20.2, "kind": "speech"}, {"start_s": 20.2, "end_s": 24.5, "kind": "laughter"},
        {"start_s": 25, "end_s": 55.4, "kind": "speech"}, {"start_s": 57.1, "end_s": 63.3, "kind": "applause"},
        {"start_s": 63.3, "end_s": 70, "kind": "speech"}, {"start_s": 70.2, "end_s": 74.1, "kind": "laughter"}]},
    "quiet": {"duration_s": 40.0, "seed": 32, "segments": [{"start_s": 0, "end_s": 38.5, "kind": "speech"}]},
    "tiny": {"duration_s": 10.0, "seed": 33, "segments": [
        {"start_s": 0, "end_s": 6, "kind": "speech"}, {"start_s": 6.5, "end_s": 9.5, "kind": "laughter"}]},
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, cache_dir):
    """Analyse three videos through the flow, which ends by writing the reports."""
    from flows.analyze import analyze_batch
    work = tmp_path_factory.mktemp("reports")
    for name, data in TIMELINES.items():
        synth.render_to(synth.parse_timeline(data), work / f"{name}.mp4")
    config = RunConfig(db=str(work / "r.duckdb"), model="fixture", device="cpu", cache_dir=str(cache_dir),
                       report_dir=str(work / "reports"))
    result = analyze_batch(paths=[str(work / f"{n}.mp4") for n in TIMELINES], config=config)
    assert not result.failures
    pages = {Path(a.path).stem: page_path(work / "reports", ReportTarget(a.video_id, a.stream_index, a.analysis_id))
             .parent for a in result.analysed}
    return work / "r.duckdb", Path(result.report), pages, result


class Page(HTMLParser):
    """Card values by data-metric, table rows by table id, and image sources."""

    def __init__(self, html: str):
        super().__init__()
        self.cards, self.tables, self.images = {}, {}, []
        self._metric = self._table = None
        self._row = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "data-metric" in a:
            self._metric, self.cards[a["data-metric"]] = a["data-metric"], ""
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag == "td":
            self._cell = ""
        elif tag == "img":
            self.images.append(a)

    def handle_endtag(self, tag):
        if tag == "div":
            self._metric = None
        elif tag == "td" and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._table].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._metric:
            self.cards[self._metric] += data.strip()
        if self._cell is not None:
            self._cell += data


def sql(db, statement, *params):
    names, rows = open_store(db).query(statement, list(params))
    return [dict(zip(names, r)) for r in rows]


@pytest.mark.parametrize("name", list(TIMELINES))
def test_every_number_on_a_video_page_equals_its_sql(analysed, name):
    db, _, pages, _ = analysed
    page = Page((pages[name] / "report.html").read_text())
    e = sql(db, "SELECT * FROM engagement WHERE path LIKE ?", f"%/{name}.mp4")[0]
    assert page.cards["laughs / min"] == num(e["laughs_per_min"])
    assert page.cards["applause / min"] == num(e["applause_per_min"])
    assert page.cards["laughter s"] == num(e["laughter_s"])
    assert page.cards["applause s"] == num(e["applause_s"])
    assert page.cards["engagement score"] == num(e["engagement_score"])
    assert page.cards["coverage"] == num(e["coverage"])
    minutes = sql(db, "SELECT minute, laughter_s, applause_s, laughter_count, applause_count, speech_s, covered_s "
                      "FROM minute_density WHERE analysis_id = ? ORDER BY minute", e["analysis_id"])
    assert page.tables["minutes"] == [[num(v) for v in m.values()] for m in minutes]
    moments = sql(db, "SELECT rank, label, start_s, end_s, seconds, peak_p FROM top_moments "
                      "WHERE analysis_id = ? AND rank <= 10 ORDER BY rank", e["analysis_id"])
    got = page.tables.get("moments", [])
    assert [r[:6] for r in got] == [[str(m["rank"]), m["label"], clock(m["start_s"]), clock(m["end_s"]),
                                     num(m["seconds"]), num(m["peak_p"])] for m in moments]


def test_the_collection_page_ranks_by_the_engagement_view(analysed):
    db, index, pages, _ = analysed
    page = Page(index.read_text())
    rows = sql(db, "SELECT path, laughs_per_min, engagement_score FROM engagement "
                   "ORDER BY engagement_score DESC NULLS LAST, video_id, stream_index")
    got = page.tables["leaderboard"]
    assert [(r[1], r[4], r[8]) for r in got] == [(Path(r["path"]).name, num(r["laughs_per_min"]),
                                                   num(r["engagement_score"])) for r in rows]
    hrefs = re.findall(r'href="(videos/[^"]+)"', index.read_text())
    assert sorted((index.parent / h).resolve() for h in hrefs) == sorted((p / "report.html").resolve()
                                                                          for p in pages.values())


def test_a_video_without_laughter_and_a_10_second_video_still_read_sensibly(analysed):
    db, _, pages, _ = analysed
    quiet = Page((pages["quiet"] / "report.html").read_text())
    assert quiet.cards["laughs / min"] == "0.00" and quiet.cards["laughter s"] == "0.00"
    assert "No laughter or applause was detected" in (pages["quiet"] / "report.html").read_text()
    tiny = Page((pages["tiny"] / "report.html").read_text())
    assert len(tiny.tables["minutes"]) == 1 and tiny.tables["minutes"][0][-1] == "10.00"
    assert tiny.tables["moments"][0][1] == "Laughter"


def test_charts_are_real_pngs_of_the_stated_size(analysed):
    _, index, pages, _ = analysed
    files = [p for folder in pages.values() for p in folder.glob("*.png")] + list((index.parent / "index-charts").glob("*.png"))
    assert len(files) == 4 * len(pages) + 2
    for png in files:
        pixels = mpimg.imread(png)
        assert pixels.shape[1] == 1000 and pixels.shape[0] >= 200, png
        assert pixels[..., :3].std() > 0.02, f"{png} looks blank"


@pytest.fixture(scope="module")
def chromium():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian chromium and chromium-driver are needed: `make test` installs them "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,1600", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_pages_render_in_headless_chromium_without_errors(analysed, artifacts, chromium):
    _, index, pages, _ = analysed
    driver = chromium
    for name, html in [("index", index)] + [(n, p / "report.html") for n, p in pages.items()]:
        driver.get(html.as_uri())
        decoded = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        assert decoded and all(decoded), (name, decoded)
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], (name, severe)
        shot = artifacts / f"report-{name}.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_a_report_plays_its_video_from_any_line_with_captions_and_sound_cues(analysed, artifacts, chromium):
    """The report's transcript: every laugh of the truth is a line near its time; a click on a time
    plays the video from there; the captions (a track of the video, and captions.vtt beside the
    page) show [LAUGHTER] while the audience laughs."""
    import webvtt
    from selenium.webdriver.common.by import By
    _, _, pages, _ = analysed
    page = pages["lively"] / "report.html"
    laughs = [s for s in TIMELINES["lively"]["segments"] if s["kind"] == "laughter"]
    cues = [(c.start_time.in_milliseconds() / 1000, c.text) for c in webvtt.read(str(page.parent / "captions.vtt"))]
    for laugh in laughs:
        assert [t for t, text in cues if "[LAUGHTER]" in text and abs(t - laugh["start_s"]) <= 0.5], (laugh, cues)
    driver = chromium
    driver.get(page.as_uri())
    rows = driver.find_elements(By.CSS_SELECTOR, "#transcript tr")
    sounds = [(float(r.get_attribute("data-t")), r) for r in rows if "sound" in r.get_attribute("class")]
    target_t, row = next((t, r) for t, r in sounds if abs(t - laughs[1]["start_s"]) <= 0.5)
    assert "[laughter" in row.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.find_element(By.CSS_SELECTOR, "a.t").click()
    state = wait_for(lambda: driver.execute_script(
        "const v = document.getElementById('player'); const cues = v.textTracks[0].activeCues;"
        "const now = document.querySelector('#transcript tr.now');"
        "return v.readyState >= 1 && v.currentTime >= arguments[0] && cues && cues.length && now ? "
        "[v.currentTime, [...cues].map(c => c.text), now.dataset.t] : null",
        target_t), 60, step=0.2, what="the video to play from the laugh with [LAUGHTER] showing")
    position, active, marked = state
    assert target_t <= position < target_t + 3 and any("[LAUGHTER]" in c for c in active), state
    assert float(marked) == pytest.approx(target_t, abs=0.5)
    assert driver.execute_script("return document.getElementById('player').textTracks[0].mode") == "showing"
    driver.save_screenshot(str(artifacts / "report-transcript.png"))


def test_the_flow_publishes_prefect_artifacts(analysed):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["laughtrack-summary", "laughtrack-minute-density", "laughtrack-report"])))}
    assert keys == {"laughtrack-summary", "laughtrack-minute-density", "laughtrack-report"}


def test_cli_report_writes_pages_and_rejects_unknown_ids(analysed, tmp_path):
    db, _, _, result = analysed
    runner = CliRunner()
    vid = result.analysed[0].video_id
    ok = runner.invoke(app, ["report", "--db", str(db), "--video", vid, "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "index.html").exists() and len(list((tmp_path / "videos").iterdir())) == 1
    bad = runner.invoke(app, ["report", "--db", str(db), "--video", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "no analysed video with id nope" in bad.output


def test_every_column_in_the_live_database_is_documented(analysed):
    db = analysed[0]
    doc = (ROOT / "docs" / "schema.md").read_text()
    sections = dict(re.findall(r"^## `(\w+)`[^\n]*\n(.*?)(?=^## |\Z)", doc, flags=re.S | re.M))
    live = sql(db, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'")
    family = {name: re.sub(r"^write_lock_\d\d$", "write_lock_00", name) for name in {c["table_name"] for c in live}}
    missing = [f"{c['table_name']}.{c['column_name']}" for c in live
               if family[c["table_name"]] not in sections
               or f"| `{c['column_name']}` |" not in sections[family[c["table_name"]]]]
    assert missing == []


def test_a_page_cap_draws_the_most_engaging_first_and_links_only_drawn_pages(analysed, tmp_path):
    from reports.site import write_reports
    db, _, _, _ = analysed
    store = open_store(db)
    written = write_reports(store, tmp_path / "capped", most_pages=1)
    assert len(written.videos) == 1 and written.left == 2
    top = max(store.query("SELECT video_id, stream_index, engagement_score FROM engagement")[1], key=lambda r: r[2])
    assert list(written.videos) == [(top[0], top[1])]
    hrefs = re.findall(r'href="(videos/[^"]+)"', written.index.read_text())
    assert hrefs == [page_href(ReportTarget(top[0], top[1], ""))]
    everything = write_reports(store, tmp_path / "all", workers=2)   # 3 pages: below PAGES_PER_WORKER, one process
    assert len(everything.videos) == 3 and everything.left == 0
