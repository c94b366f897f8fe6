"""``{% perf_run_charts run %}``: a stored run's charts, for the admin run page.

Two queries whatever the run's size (its samples, then its endpoint rows with their histograms),
and only the columns the charts read. The SVG comes from perf.charts, which escapes every text.
"""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from perf import charts
from perf.models import EndpointStats, PerfRun, StatsSample

register = template.Library()

CHART_ROW = "display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 16px"
SUBHEADING = "margin:12px 0 4px;font-size:13px;font-weight:600"
SAMPLE_FIELDS = ("elapsed", "users", "requests_per_second", "failures_per_second", "p50", "p95")


def endpoint_histograms(run: PerfRun) -> list[tuple[str, dict]]:
    """(label, histogram) per endpoint in table order, the Aggregated row last."""
    rows = EndpointStats.objects.filter(run=run).only("method", "name", "histogram", "is_aggregated")
    return [(f"{row.method} {row.name}".strip(), row.histogram or {})
            for row in rows.order_by("is_aggregated", "name", "method")]


@register.simple_tag
def perf_run_charts(run: PerfRun) -> SafeString:
    """Users, req/s and failures/s, p50/p95 over time, then one distribution chart per endpoint."""
    samples = list(StatsSample.objects.filter(run=run).only(*SAMPLE_FIELDS).order_by("timestamp"))
    # The charts are complete SVG documents built from escaped text only.
    timeline = [mark_safe(svg) for svg in charts.timeline_charts(samples)]
    distributions = [mark_safe(svg) for svg in charts.distribution_charts(endpoint_histograms(run))]
    return format_html(
        '<div class="perf-charts"><div style="{}">{}</div><p style="{}">{}</p><div style="{}">{}</div></div>',
        CHART_ROW, format_html_join("", "{}", ((svg,) for svg in timeline)),
        SUBHEADING, "Response-time distribution per endpoint",
        CHART_ROW, format_html_join("", "{}", ((svg,) for svg in distributions))
        if distributions else "No endpoint recorded a request.",
    )
