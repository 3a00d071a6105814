"""The README's screenshot (docs/report_summary.png): the first screen of the HTML report of the
newest FINISHED `make run` (experiment `default` in the default store), in headless Chromium at
1150x760. Prints the numbers the README's caption quotes. Needs `/usr/bin/chromium`.
Run: make run && .venv/bin/python docs/_scripts/report_screenshot.py (a few seconds)."""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from lit_mia.report_html import build_report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUT = ROOT / "docs" / "report_summary.png"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        path = build_report("default", [], str(Path(tmp) / "report.html"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1150, "height": 760})
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=str(OUT), full_page=False)
            print(page.locator("#summary").inner_text())
            browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
