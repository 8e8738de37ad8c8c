"""IoTrust's BigQuery usage message, built in Python from the query's rows (was a
PythonOperator formatting the rows of a BigQueryGetDataOperator)."""
import logging

from updraft import Skip

from lib.slack_format import bullets, gib, header

log = logging.getLogger(__name__)


def build_message(rows, context, top=10):
    if not rows:
        raise Skip("no queries on %s" % context["ds"])
    log.info("%d users ran queries on %s", len(rows), context["ds"])
    lines = ["*%s*: `%s` GiB" % (r["user"], gib(r["bytes"])) for r in rows[:top]]
    total = sum(r["bytes"] for r in rows)
    return {
        "text": header("bar_chart", "BigQuery usage", context["ds"]) + " (KST)\n" + bullets(lines),
        "total_gib": gib(total),
    }
