"""Slack formatting shared by the team's DAGs (usage_to_slack_daily, events_export_daily)."""


def gib(n_bytes):
    """Bytes as GiB with two decimals."""
    return "%.2f" % (float(n_bytes) / 2**30)


def bullets(lines):
    """A Slack bullet list."""
    return "\n".join("• " + line for line in lines)


def header(emoji, title, ds):
    return ":%s: *%s for %s*" % (emoji, title, ds)
