"""axe-core in Chromium: one check every browser test uses."""

from axe_playwright_python.sync_playwright import Axe


def axe_clean(page, context=None):
    """Fail with axe's report on any violation in the page (or in ``context``)."""
    results = Axe().run(page, context=context)
    assert results.violations_count == 0, results.generate_report()
