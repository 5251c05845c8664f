"""reports/report.html: every table of report.md and timing.md and every figure, in one page that
needs nothing else; and, where Chromium is installed, the page as a browser renders it."""
import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from bort import report, report_html
from bort.errors import BortError
from conftest import ROOT

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SOURCE = {"depth": 6, "num_heads": 12, "hidden_size": 384, "intermediate_size": 1536, "vocab_size": 30522}


def run_report_stage(out: Path, arch: Path) -> None:
    """The report stage's own command from dvc.yaml, on the committed metrics and figures, writing to
    `out` (the source's arch.json is a DVC output, absent from a fresh clone: `arch` stands in)."""
    words = shlex.split(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]["cmd"])
    words[words.index("--out") + 1], words[words.index("--teacher-arch") + 1] = str(out), str(arch)
    result = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The report stage's outputs, and the figures it embeds (name -> file)."""
    out = tmp_path_factory.mktemp("report")
    arch = out.parent / "arch.json"
    arch.write_text(json.dumps(SOURCE))
    run_report_stage(out, arch)
    return out, {"scores.png": out / "scores.png", "pareto.png": ROOT / "reports/pareto.png",
                 "timing.png": ROOT / "reports/timing.png"}


class Page(HTMLParser):
    """The tables (rows of cell texts, the header first), images and links of a page, and whether
    it loads anything: scripts, stylesheets, frames."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self.hrefs, self.ids, self.loads, self.body = [], [], [], set(), [], {}
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "body":
            self.body = attrs
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self.hrefs.append(attrs.get("href", ""))
        if tag in ("script", "link", "iframe", "object", "embed") or (tag != "img" and "src" in attrs):
            self.loads.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def markdown_tables(text: str) -> list:
    """The tables of a Markdown file as rows of cell texts (inline markup removed), header first."""
    tables, rows = [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                cells = re.split(r"(?<!\\) \| ", line[2:-2])
                rows = (rows or []) + [[re.sub(r"\*\*|`", "", c).replace("\\|", "|") for c in cells]]
        elif rows:
            tables.append(rows)
            rows = None
    return tables


def test_the_page_has_every_table_and_figure_of_report_md_and_timing_md(built):
    out, figures = built
    page = Page((out / "report.html").read_text(encoding="utf-8"))
    expected = markdown_tables((out / "report.md").read_text()) + markdown_tables((out / "timing.md").read_text())
    assert len(expected) >= 10 and page.tables == expected           # the same cells, in the same order
    named = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "report.md").read_text() + (out / "timing.md").read_text())
    assert sorted(named) == sorted(figures)                          # scores, the Pareto front, timing
    assert len(page.images) == len(named)
    for name, image in zip(named, page.images):
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1], validate=True) == figures[name].read_bytes(), name
    assert not page.loads and "url(" not in report_html.CSS          # nothing to fetch, no script
    assert page.hrefs and all(h.startswith("#") and h[1:] in page.ids for h in page.hrefs), page.hrefs


def test_the_page_is_byte_identical_on_a_rerun(built, tmp_path):
    out, _ = built
    (tmp_path / "arch.json").write_text(json.dumps(SOURCE))
    run_report_stage(tmp_path / "again", tmp_path / "arch.json")
    assert (tmp_path / "again/report.html").read_bytes() == (out / "report.html").read_bytes()


def test_a_cell_sets_off_its_interval_and_marks():
    cell = report_html.cell("70.0 ±1.0 [65.0, 75.0]† (one class)")
    assert cell == ('70.0 <span class="sd">±1.0</span> <span class="ci">[65.0, 75.0]</span><span class="mark">†'
                    '</span> <span class="flag">(one class)</span>')
    assert report_html.cell("**59.1** [57.2, 61.0]*").endswith('<span class="ci">[57.2, 61.0]</span>'
                                                              '<span class="mark">*</span>')
    assert report_html.inline("in [timing.md](timing.md), *measured on*, `a<b`") == \
        'in <a href="#timing">timing.md</a>, <em>measured on</em>, <code>a&lt;b</code>'


def test_a_table_written_as_text_or_a_missing_figure_is_an_error(tmp_path):
    table = report.to_markdown(["a", "b|c"], [[1, 2]])
    assert table.header == ["a", "b|c"] and table.rows == [["1", "2"]] and "b\\|c" in table
    assert "<th>b|c</th>" in report_html.render(["# T", "", table], [], {})
    with pytest.raises(BortError, match="a table given as text"):
        report_html.render(["# T", "", str(table)], [], {})
    with pytest.raises(BortError, match="missing, expected the figure x.png"):
        report_html.render(["![x](x.png)"], [], {"x.png": tmp_path / "x.png"})


def browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


#: what the test reads back from the rendered page: added to a copy, never to report.html itself
PROBE = """<script>addEventListener("load", () => {
  const b = document.body, tables = [...document.querySelectorAll("table")];
  b.dataset.tables = tables.length;
  b.dataset.emptyTables = tables.filter(t => !t.offsetWidth || !t.offsetHeight).length;
  b.dataset.height = document.documentElement.scrollHeight;
  b.dataset.pageWidth = document.documentElement.scrollWidth;
  for (const i of document.images) i.dataset.shown = `${i.complete} ${i.naturalWidth}x${i.naturalHeight} ${i.offsetWidth}`;
});</script>"""


@pytest.mark.skipif(browser() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_chromium_renders_every_table_and_figure(built, tmp_path):
    """Headless Chromium loads the page: every table laid out, every image decoded at its file's size,
    nothing wider than the window; the screenshot of the whole page is saved as report.png."""
    out, _ = built
    probed = tmp_path / "probed.html"
    probed.write_text((out / "report.html").read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    width = 1280

    def chromium(*args):
        result = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                 f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", *args],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    dom = Page(chromium(f"--window-size={width},1000", "--dump-dom", probed.as_uri()))
    static = Page((out / "report.html").read_text(encoding="utf-8"))
    assert int(dom.body["data-tables"]) == len(static.tables) and dom.body["data-empty-tables"] == "0", dom.body
    assert int(dom.body["data-page-width"]) <= width                 # wide tables scroll in their box
    assert len(dom.images) == len(static.images) == 3
    for image in dom.images:
        data = base64.b64decode(image["src"].split(",", 1)[1])
        natural = "{}x{}".format(*report_html.png_size(data, "figure"))
        complete, size, shown = image["data-shown"].split()
        assert complete == "true" and size == natural and 0 < int(shown) <= width, image["data-shown"]

    shot = tmp_path / "report.png"
    chromium(f"--window-size={width},{min(int(dom.body['data-height']), 30000)}", f"--screenshot={shot}", probed.as_uri())
    from PIL import Image
    with Image.open(shot) as image:
        assert image.size == (width, min(int(dom.body["data-height"]), 30000))
        histogram = image.convert("L").histogram()
    assert sum(histogram[:200]) > 0.01 * sum(histogram), "the screenshot is (nearly) blank"
    print(f"screenshot: {shot}")
