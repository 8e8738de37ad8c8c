"""Bucketplace's export report: reads the script's summary and formats it with the shared
helper."""
from lib.slack_format import bullets, header


def report(summary, context):
    lines = ["%s: %s rows" % (k, v) for k, v in sorted(summary["tables"].items())]
    return {"text": header("package", "Exports", context["ds"]) + "\n" + bullets(lines),
            "try": context["ti"]["try_number"]}
